"""Keys (EC P-256, passphrase-protected) and the roster signed by the governance root key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

from core.cli import signing as signing_cli
from core.decisions.roster import (
    Roster,
    RosterEntry,
    add_reviewer,
    check_roster_serial,
    load_roster,
    read_roster_unverified,
    revoke_reviewer,
    sign_roster,
)
from core.errors import AuthorizationError, KeyError_, RosterError
from core.signing.keys import (
    KeySigner,
    generate_key_pair,
    load_public_key,
    load_signer,
    passphrase_from_env,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _key(tmp_path: Path, key_id: str) -> KeySigner:
    paths = generate_key_pair(key_id, tmp_path / "keys", f"pw-{key_id}")
    return load_signer(paths.private_key, f"pw-{key_id}")


def _entry(signer: KeySigner, *roles: str, **extra: object) -> RosterEntry:
    return RosterEntry.model_validate(
        {
            "id": signer.key_id,
            "name": signer.key_id.title(),
            "roles": roles,
            "public_key": signer.public_key_pem(),
            "valid_from": T0,
            **extra,
        }
    )


def test_new_key_is_encrypted_p256_and_reloads(tmp_path: Path) -> None:
    """keys new writes an encrypted PKCS#8 private key and its public key, never overwriting."""
    paths = generate_key_pair("alice", tmp_path, "correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in paths.private_key.read_bytes()
    assert paths.private_key.stat().st_mode & 0o077 == 0
    signer = load_signer(paths.private_key, "correct horse")
    assert signer.key_id == "alice"
    assert signer.fingerprint == paths.fingerprint
    assert load_public_key(paths.public_key).public_numbers() == signer.public_key.public_numbers()
    with pytest.raises(KeyError_, match="already exists"):
        generate_key_pair("alice", tmp_path, "again")


def test_wrong_or_missing_passphrase_names_the_key(tmp_path: Path) -> None:
    """A wrong or empty passphrase is a KeyError_ naming the file and the passphrase field."""
    paths = generate_key_pair("bob", tmp_path, "right")
    with pytest.raises(KeyError_) as caught:
        load_signer(paths.private_key, "wrong")
    assert caught.value.file == str(paths.private_key)
    assert caught.value.field == "passphrase"
    with pytest.raises(KeyError_, match="do not match"):
        load_signer(paths.private_key, "")
    with pytest.raises(KeyError_, match="empty passphrase"):
        generate_key_pair("carol", tmp_path, "")


def test_non_p256_key_is_refused_clearly(tmp_path: Path) -> None:
    """An Ed25519 key is refused with a message naming the expected curve."""
    path = tmp_path / "ed.key"
    path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(KeyError_, match="unsupported key type") as caught:
        load_signer(path, "pw")
    assert "secp256r1" in str(caught.value.expected)


def test_passphrase_from_named_environment_variable() -> None:
    """The passphrase comes from the variable named by the caller; unset or empty is refused."""
    assert passphrase_from_env("KFM_PW", environ={"KFM_PW": "s3cret"}) == "s3cret"
    with pytest.raises(KeyError_, match="unset"):
        passphrase_from_env("KFM_PW", environ={})
    with pytest.raises(KeyError_, match="unset or empty"):
        passphrase_from_env("KFM_PW", environ={"KFM_PW": ""})


@pytest.fixture
def roster_setup(tmp_path: Path) -> tuple[Path, KeySigner, KeySigner]:
    root = _key(tmp_path, "root")
    alice = _key(tmp_path, "alice")
    path = tmp_path / "governance" / "roster.json"
    add_reviewer(path, _entry(alice, "council", "steward"))
    sign_roster(path, root)
    return path, root, alice


def test_signed_roster_loads(roster_setup: tuple[Path, KeySigner, KeySigner]) -> None:
    """A roster signed by the root key loads, and round-trips through to_dict/from_dict."""
    path, root, alice = roster_setup
    trusted = load_roster(path, root.public_key)
    assert trusted.root_fingerprint == root.fingerprint
    entry = trusted.entry("alice")
    assert entry is not None and entry.fingerprint == alice.fingerprint
    assert Roster.from_dict(trusted.roster.to_dict()) == trusted.roster


def test_edited_roster_is_refused_naming_the_field(
    roster_setup: tuple[Path, KeySigner, KeySigner],
) -> None:
    """Granting a role by editing roster.json after signing is caught, naming the field."""
    path, root, _ = roster_setup
    data = json.loads(path.read_text())
    data["reviewers"][0]["roles"].append("admin")
    path.write_text(json.dumps(data))
    with pytest.raises(RosterError, match="edited after it was signed") as caught:
        load_roster(path, root.public_key)
    assert caught.value.field == "reviewers[alice].roles[2]"
    assert caught.value.file == str(path)


def test_reformatting_keeps_the_signature(roster_setup: tuple[Path, KeySigner, KeySigner]) -> None:
    """Whitespace and key order do not matter: the signature covers canonical JSON."""
    path, root, _ = roster_setup
    path.write_text(json.dumps(json.loads(path.read_text()), indent=7))
    assert load_roster(path, root.public_key).entry("alice") is not None


def test_roster_signed_by_another_key_is_refused(
    roster_setup: tuple[Path, KeySigner, KeySigner], tmp_path: Path
) -> None:
    """A roster signed by a non-root key (even one on the roster) does not load."""
    path, root, alice = roster_setup
    sign_roster(path, alice)
    with pytest.raises(RosterError, match="does not verify with the root key") as caught:
        load_roster(path, root.public_key)
    assert caught.value.file == str(path) + ".sig"


def test_unsigned_or_rootless_roster_is_refused(tmp_path: Path) -> None:
    """A roster without signature file, or without a root key to check it, is refused."""
    alice = _key(tmp_path, "alice")
    path = tmp_path / "roster.json"
    add_reviewer(path, _entry(alice, "council"))
    with pytest.raises(RosterError, match="not signed"):
        load_roster(path, alice.public_key)
    with pytest.raises(RosterError, match="no root public key"):
        load_roster(path, None)


def test_add_invalidates_signature_until_resigned(
    roster_setup: tuple[Path, KeySigner, KeySigner], tmp_path: Path
) -> None:
    """Adding a reviewer invalidates the signature; re-signing restores it."""
    path, root, _ = roster_setup
    bob = _key(tmp_path, "bob")
    add_reviewer(path, _entry(bob, "working_group"))
    with pytest.raises(RosterError) as caught:
        load_roster(path, root.public_key)
    assert caught.value.field == "reviewers[bob]"
    sign_roster(path, root)
    assert load_roster(path, root.public_key).entry("bob") is not None
    with pytest.raises(RosterError, match="already on the roster"):
        add_reviewer(path, _entry(bob, "council"))


def test_empty_or_malformed_roster_is_refused(tmp_path: Path) -> None:
    """An empty roster, an unknown role and a naive time are refused naming the field."""
    root = _key(tmp_path, "root")
    path = tmp_path / "roster.json"
    path.write_text(json.dumps({"format_version": 1, "reviewers": []}))
    with pytest.raises(RosterError) as caught:
        sign_roster(path, root)
    assert caught.value.field == "reviewers"
    bad = _entry(root, "council").model_dump(mode="json")
    bad["roles"] = ["overlord"]
    path.write_text(json.dumps({"format_version": 1, "reviewers": [bad]}))
    with pytest.raises(RosterError) as caught:
        read_roster_unverified(path)
    assert caught.value.field == "reviewers.0.roles.0"
    with pytest.raises(ValueError, match="timezone"):
        _entry(root, "council", valid_from=datetime(2026, 1, 1))


def test_authorize_refuses_role_window_and_revocation(tmp_path: Path) -> None:
    """authorize refuses an unknown actor, an ungranted role, expiry, not-yet-valid and revocation."""
    root = _key(tmp_path, "root")
    alice, bob, carol = (_key(tmp_path, n) for n in ("alice", "bob", "carol"))
    path = tmp_path / "roster.json"
    add_reviewer(path, _entry(alice, "council", valid_until=T0 + timedelta(days=30)))
    add_reviewer(path, _entry(bob, "steward", revoked=True))
    add_reviewer(path, _entry(carol, "steward", revoked=True, revoked_at=T0 + timedelta(days=10)))
    sign_roster(path, root)
    trusted = load_roster(path, root.public_key)
    day = timedelta(days=1)
    assert trusted.authorize("alice", "council", T0 + day).id == "alice"
    cases = [
        ("mallory", "council", T0 + day, "reviewers"),
        ("alice", "steward", T0 + day, "reviewers[alice].roles"),
        ("alice", "council", T0 + 31 * day, "reviewers[alice].valid_until"),
        ("alice", "council", T0 - day, "reviewers[alice].valid_from"),
        ("bob", "steward", T0 + day, "reviewers[bob].revoked"),
        ("carol", "steward", T0 + 11 * day, "reviewers[carol].revoked"),
    ]
    for actor, role, at, field in cases:
        with pytest.raises(AuthorizationError) as caught:
            trusted.authorize(actor, role, at)
        assert caught.value.field == field
    assert trusted.authorize("carol", "steward", T0 + 9 * day).id == "carol"


def test_revoke_takes_effect_from_its_time(
    roster_setup: tuple[Path, KeySigner, KeySigner], tmp_path: Path
) -> None:
    """After `revoke`, alice may act before the revocation time, not after; twice is refused."""
    path, root, _ = roster_setup
    day = timedelta(days=1)
    revoke_reviewer(path, "alice", T0 + 10 * day)
    with pytest.raises(RosterError):  # the edit invalidates the signature until re-signed
        load_roster(path, root.public_key)
    sign_roster(path, root)
    trusted = load_roster(path, root.public_key)
    assert trusted.authorize("alice", "council", T0 + 9 * day).id == "alice"
    with pytest.raises(AuthorizationError) as caught:
        trusted.authorize("alice", "council", T0 + 11 * day)
    assert caught.value.field == "reviewers[alice].revoked"
    with pytest.raises(RosterError, match="already revoked"):
        revoke_reviewer(path, "alice", T0 + 12 * day)
    with pytest.raises(RosterError, match="no such reviewer"):
        revoke_reviewer(path, "mallory", T0)
    result = CliRunner().invoke(
        _app(), ["roster", "revoke", "--id", "nobody", "--roster", str(path)]
    )
    assert result.exit_code != 0


def _app() -> typer.Typer:
    app = typer.Typer()
    signing_cli.register(app)
    return app


def test_cli_keys_roster_add_sign_verify_show(tmp_path: Path) -> None:
    """The keys and roster commands create, sign, verify and show a roster; an edit is caught."""
    runner = CliRunner()
    app = _app()
    keys = tmp_path / "keys"
    env = {"KFM_PW": "pw"}
    for key_id in ("root", "alice"):
        result = runner.invoke(
            app,
            ["keys", "new", "--id", key_id, "--out", str(keys), "--passphrase-env", "KFM_PW"],
            env=env,
        )
        assert result.exit_code == 0, result.output
    # Prompted passphrase (typed twice) works as well.
    result = runner.invoke(app, ["keys", "new", "--id", "bob", "--out", str(keys)], input="x\nx\n")
    assert result.exit_code == 0, result.output
    roster = tmp_path / "roster.json"
    common = ["--roster", str(roster)]
    result = runner.invoke(
        app,
        ["roster", "add", "--id", "alice", "--role", "council", "--role", "steward",
         "--public-key", str(keys / "alice.pub"), "--name", "Alice", *common],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        ["roster", "sign", "--root-key", str(keys / "root.key"), "--passphrase-env", "KFM_PW",
         *common],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    verify = ["--root-pub", str(keys / "root.pub"), *common]
    result = runner.invoke(app, ["roster", "verify", *verify, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reviewers"] == 1
    result = runner.invoke(app, ["roster", "show", *verify, "--json"])
    assert json.loads(result.output)["reviewers"][0]["roles"] == ["council", "steward"]
    result = runner.invoke(
        app,
        ["roster", "add", "--id", "bob", "--role", "pipeline",
         "--public-key", str(keys / "bob.pub"), *common],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["roster", "show", *verify])
    assert isinstance(result.exception, RosterError)
    assert result.exception.field == "reviewers[bob]"
    result = runner.invoke(
        app,
        ["roster", "add", "--id", "eve", "--role", "overlord",
         "--public-key", str(keys / "bob.pub"), *common],
    )  # fmt: skip
    assert isinstance(result.exception, RosterError)
    assert "roles among" in str(result.exception)


def test_every_wrong_passphrase_is_named_as_such(tmp_path: Path) -> None:
    """A wrong passphrase that decrypts to unparseable bytes (~1 in 200) is still 'wrong passphrase'."""
    paths = generate_key_pair("k", tmp_path / "keys", "right")
    for attempt in range(600):
        with pytest.raises(KeyError_, match="wrong passphrase"):
            load_signer(paths.private_key, f"wrong-{attempt}")


def test_serial_grows_with_every_change(
    roster_setup: tuple[Path, KeySigner, KeySigner], tmp_path: Path
) -> None:
    """A new roster has serial 1; add and revoke raise it; the signature covers it."""
    path, root, _ = roster_setup
    first = load_roster(path, root.public_key)
    assert first.serial == read_roster_unverified(path).serial
    assert add_reviewer(path, _entry(_key(tmp_path, "bob"), "steward")).serial == first.serial + 1
    assert revoke_reviewer(path, "bob", T0).serial == first.serial + 2
    sign_roster(path, root)
    assert load_roster(path, root.public_key).serial == first.serial + 2
    fresh = tmp_path / "fresh.json"
    assert add_reviewer(fresh, _entry(_key(tmp_path, "carol"), "council")).serial == 1


def test_sign_refuses_a_change_without_a_higher_serial(
    roster_setup: tuple[Path, KeySigner, KeySigner],
) -> None:
    """Changed content under the signed serial is not signed: two rosters never share one."""
    path, root, _ = roster_setup
    data = json.loads(path.read_text())
    signed_serial = data.get("serial", 1)
    data["reviewers"][0]["name"] = "Someone else"
    path.write_text(json.dumps(data))
    with pytest.raises(RosterError, match="serial did not grow") as caught:
        sign_roster(path, root)
    assert caught.value.field == "serial"
    data["serial"] = signed_serial + 1
    path.write_text(json.dumps(data))
    sign_roster(path, root)
    sign_roster(path, root)  # the same content again is fine
    assert load_roster(path, root.public_key).serial == signed_serial + 1


def test_an_older_signed_roster_is_refused_once_a_newer_is_recorded(
    roster_setup: tuple[Path, KeySigner, KeySigner], tmp_path: Path
) -> None:
    """Restoring the previous roster and signature (alice unrevoked) fails the serial check."""
    path, root, _ = roster_setup
    signature = path.with_name(path.name + ".sig")
    old_roster, old_signature = path.read_bytes(), signature.read_bytes()
    revoke_reviewer(path, "alice", T0)
    sign_roster(path, root)
    current = load_roster(path, root.public_key)
    check_roster_serial(current, {"the ledger": current.serial})
    path.write_bytes(old_roster)
    signature.write_bytes(old_signature)
    restored = load_roster(path, root.public_key)  # its signature is still valid
    assert restored.authorize("alice", "council", T0 + timedelta(days=1)).id == "alice"
    with pytest.raises(RosterError, match="older than one already recorded") as caught:
        check_roster_serial(restored, {"the ledger": 1, "the witness": current.serial})
    assert caught.value.expected == f"serial {current.serial} or higher (recorded by the witness)"
    assert caught.value.found == restored.serial
