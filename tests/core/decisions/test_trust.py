"""The trust anchor lives outside the workspace: root key pins, the client witness, roster serials.

Attacks: replacing ``keys/root.pub`` and re-signing the roster with a new root; restoring an
older signed roster (a revoked key back); opening a workspace whose root nobody pinned.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from core.cli import app, main
from core.decisions.roster import (
    RosterEntry,
    add_reviewer,
    default_signature_path,
    revoke_reviewer,
    sign_roster,
)
from core.decisions.trust import (
    HOME_ENV,
    ROOT_FINGERPRINT_ENV,
    TrustStore,
    Witness,
    trust_home,
)
from core.errors import RosterError, TrustError
from core.signing.keys import generate_key_pair, load_public_key, load_signer, public_key_pem
from core.workspace import Workspace, init_workspace

if TYPE_CHECKING:  # the fixture's type; conftest modules are not imported by name
    from tests.core.decisions.conftest import Governed

runner = CliRunner()
FP = "ab" * 32
OTHER = "cd" * 32


def kfm(*args: str) -> dict:
    """Run kfm with --json; exit 0 required."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict = json.loads(result.stdout)
    return data


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """The console script as a user runs it: errors printed as diagnostics, an exit code."""
    monkeypatch.setattr(sys, "argv", ["kfm", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    return int(caught.value.code or 0)


@pytest.fixture
def workspace(tmp_path: Path, trust_store: TrustStore) -> Workspace:
    """A fresh workspace, its root pinned by init in this test's trust store."""
    return init_workspace(
        tmp_path / "ws", trust=trust_store, root_passphrase="root-pw", pipeline_passphrase="p"
    )


# --------------------------------------------------------------------------- where trust lives
def test_trust_home_order(tmp_path: Path) -> None:
    """KFM_HOME, else an absolute XDG_CONFIG_HOME/kfm, else ~/.config/kfm; none is an error."""
    home = tmp_path / "user"
    assert trust_home({HOME_ENV: str(tmp_path / "k")}, home) == tmp_path / "k"
    xdg = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert trust_home(xdg, home) == tmp_path / "xdg" / "kfm"
    assert trust_home({"XDG_CONFIG_HOME": "relative"}, home) == home / ".config" / "kfm"
    assert trust_home({}, home) == home / ".config" / "kfm"
    with pytest.raises(TrustError) as caught:
        trust_home({}, None)
    assert caught.value.field == HOME_ENV


def test_pins_round_trip_and_the_environment_wins(tmp_path: Path) -> None:
    """Pins survive odd paths; KFM_ROOT_FINGERPRINT overrides them; a bad fingerprint is refused."""
    store = TrustStore(tmp_path / "home")
    odd = tmp_path / 'a "quoted" \\ wörkspace'
    assert store.pin(odd, FP.upper()) is None
    assert store.pin(odd, FP) == FP
    pin = store.pin_for(odd)
    assert pin is not None and (pin.fingerprint, pin.source) == (FP, str(store.trust_file))
    assert store.pin_for(tmp_path / "elsewhere") is None
    store.move_pin(odd, tmp_path / "moved")
    assert store.pins() == {str((tmp_path / "moved").resolve()): FP}
    store.forget(tmp_path / "moved")
    assert store.pins() == {}
    env = TrustStore.from_environment(
        {HOME_ENV: str(store.home), ROOT_FINGERPRINT_ENV: OTHER}, None
    )
    assert env.pin_for(tmp_path / "anywhere") == type(pin)(OTHER, f"${ROOT_FINGERPRINT_ENV}")
    with pytest.raises(TrustError) as caught:
        store.pin(odd, "not-a-fingerprint")
    assert caught.value.found == "not-a-fingerprint"
    with pytest.raises(TrustError) as caught:
        TrustStore(store.home, root_fingerprint="abc")
    assert caught.value.field == ROOT_FINGERPRINT_ENV


def test_a_malformed_trust_file_is_named(tmp_path: Path) -> None:
    """A broken trust file or pin is an error naming the file and the field."""
    store = TrustStore(tmp_path)
    store.trust_file.write_text('[workspaces."/x"]\nroot = "short"\n')
    with pytest.raises(TrustError) as caught:
        store.pin_for(Path("/x"))
    assert (caught.value.file, caught.value.field) == (
        str(store.trust_file),
        'workspaces."/x".root',
    )
    store.trust_file.write_text("not toml [")
    with pytest.raises(TrustError, match="cannot be read"):
        store.pins()


# --------------------------------------------------------------------------- the root key pin
def test_init_pins_the_root_it_creates(workspace: Workspace, trust_store: TrustStore) -> None:
    """`init` pins the new root key for the workspace's absolute path; the roster loads."""
    pin = trust_store.pin_for(workspace.root)
    assert pin is not None and pin.fingerprint == workspace.root_fingerprint()
    assert workspace.roster().root_fingerprint == pin.fingerprint


def test_no_pin_is_refused_with_the_fingerprint_and_the_command(
    workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without a pin the roster is refused, naming the fingerprint found and `kfm trust pin`."""
    found = workspace.root_fingerprint()
    stranger = Workspace.open(workspace.root, trust=TrustStore(tmp_path / "empty"))
    with pytest.raises(TrustError) as caught:
        stranger.roster()
    assert caught.value.found == found
    assert f"kfm trust pin {found} --workspace {workspace.root.resolve()}" in (
        caught.value.hint or ""
    )
    with pytest.raises(TrustError, match="without a trust store"):
        Workspace.open(workspace.root).roster()
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "empty"))
    code = run_main(monkeypatch, "status", "--workspace", str(workspace.root))
    message = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "not pinned" in message
    assert found in message and "kfm trust pin" in message


def test_replaced_root_key_and_resigned_roster_are_refused(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker's root in keys/root.pub, with a roster re-signed by it, fails the pin."""
    pinned = workspace.root_fingerprint()
    attacker = generate_key_pair("root", tmp_path / "attacker", "x")
    mallory = generate_key_pair("mallory", tmp_path / "attacker", "x")
    add_reviewer(
        workspace.roster_path,
        RosterEntry(
            id="mallory",
            name="Mallory",
            roles=("council",),
            public_key=public_key_pem(load_public_key(mallory.public_key)),
            valid_from=datetime(2020, 1, 1, tzinfo=UTC),
        ),
    )
    sign_roster(workspace.roster_path, load_signer(attacker.private_key, "x"))
    workspace.root_public_key_path.write_bytes(attacker.public_key.read_bytes())
    with pytest.raises(TrustError) as caught:
        workspace.roster()
    assert caught.value.expected.startswith(pinned)
    assert caught.value.found == workspace.root_fingerprint() != pinned
    monkeypatch.setenv("KFM_WORKSPACE", str(workspace.root))
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code != 0 and isinstance(result.exception, TrustError)
    result = runner.invoke(app, ["ledger", "verify", "--json"])
    assert result.exit_code != 0 and "not the pinned one" in str(result.exception)


def test_kfm_trust_pin_and_show(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`trust pin` pins for the workspace (warning on a mismatch); `trust show` tells all."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "second-client"))
    root = str(workspace.root)
    shown = kfm("trust", "show", "--workspace", root)
    assert shown["pin"] is None and shown["workspace_root_key"] == workspace.root_fingerprint()
    pinned = kfm("trust", "pin", OTHER, "--workspace", root)
    assert (
        pinned["matches"] is False and pinned["workspace_root_key"] == workspace.root_fingerprint()
    )
    text = runner.invoke(app, ["trust", "pin", OTHER, "--workspace", root]).output
    assert "commands will refuse it" in " ".join(text.split())
    pinned = kfm("trust", "pin", workspace.root_fingerprint(), "--workspace", root)
    assert pinned["matches"] is True and pinned["replaced"] == OTHER
    shown = kfm("trust", "show", "--workspace", root)
    assert shown["pin"]["source"] == str(tmp_path / "second-client" / "trust.toml")
    assert shown["matches"] is True and shown["witness"] is None
    status = kfm("status", "--workspace", root)
    assert status["anchors"]["root_pin"] == shown["pin"]
    assert kfm("trust", "show", "--workspace", root)["witness"]["seq"] == 0
    output = runner.invoke(app, ["status", "--workspace", root]).output
    assert f"root key {workspace.root_fingerprint()} (pinned by" in " ".join(output.split())
    bad = runner.invoke(app, ["trust", "pin", "xyz", "--workspace", root])
    assert bad.exit_code != 0 and isinstance(bad.exception, TrustError)


def test_the_environment_pin_serves_a_server_without_a_trust_file(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KFM_ROOT_FINGERPRINT alone lets a server open the workspace; another value is refused."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "server"))
    monkeypatch.setenv(ROOT_FINGERPRINT_ENV, workspace.root_fingerprint())
    assert kfm("status", "--workspace", str(workspace.root))["anchors"]["root_pin"]["source"] == (
        f"${ROOT_FINGERPRINT_ENV}"
    )
    monkeypatch.setenv(ROOT_FINGERPRINT_ENV, OTHER)
    result = runner.invoke(app, ["status", "--workspace", str(workspace.root)])
    assert result.exit_code != 0 and f"${ROOT_FINGERPRINT_ENV}" in str(result.exception)


def test_kfm_init_reports_the_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kfm_home: Path
) -> None:
    """`kfm init` prints the root fingerprint and where it pinned it."""
    monkeypatch.setenv("ROOT_PW", "r")
    monkeypatch.setenv("PIPE_PW", "p")
    made = kfm(
        "init",
        "--workspace",
        str(tmp_path / "cli-ws"),
        "--root-passphrase-env",
        "ROOT_PW",
        "--pipeline-passphrase-env",
        "PIPE_PW",
    )
    assert made["pinned_in"] == str(kfm_home / "trust.toml")
    assert TrustStore(kfm_home).pins() == {
        str((tmp_path / "cli-ws").resolve()): made["root_fingerprint"]
    }


# --------------------------------------------------------------------------- the witness
def test_the_witness_never_goes_back(tmp_path: Path) -> None:
    """Recording an older head keeps the newer one; checkpoint and roster serial only grow."""
    store = TrustStore(tmp_path)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    newer = Witness(
        root=FP, seq=7, entry_hash="1" * 64, checkpoint_seq=5, roster_serial=3, updated_at=now
    )
    older = Witness(
        root=FP, seq=4, entry_hash="2" * 64, checkpoint_seq=6, roster_serial=2, updated_at=now
    )
    store.record_witness(newer)
    kept = store.record_witness(older)
    assert (kept.seq, kept.entry_hash, kept.checkpoint_seq, kept.roster_serial) == (
        7,
        "1" * 64,
        6,
        3,
    )
    assert store.witness(FP) == kept
    assert store.witness(OTHER) is None
    store.witness_path(FP).write_text("{")
    with pytest.raises(TrustError, match="witness file is unreadable"):
        store.witness(FP)


def test_a_restored_older_roster_is_refused(
    governed: Governed, tmp_path: Path, kfm_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Putting back the roster from before alice's revocation: refused by witness and checkpoint."""
    ws = governed.ws
    with ws.decision_engine("pipe-pw") as engine:
        governed.deploy(engine, "1.0.0")
    signature = default_signature_path(ws.roster_path)
    old_roster, old_signature = ws.roster_path.read_bytes(), signature.read_bytes()
    revoke_reviewer(ws.roster_path, "alice", datetime.now(UTC) - timedelta(minutes=1))
    sign_roster(ws.roster_path, load_signer(ws.path("keys/root.key"), "root-pw"))
    assert runner.invoke(app, ["ledger", "checkpoint", "--json"]).exit_code == 0
    assert kfm("status")["anchors"]["roster_serial"] == ws.roster().serial
    ws.roster_path.write_bytes(old_roster)  # the attacker restores both files
    signature.write_bytes(old_signature)
    with pytest.raises(RosterError, match="older than one already recorded") as caught:
        ws.roster()  # this client's witness saw the newer serial
    assert "witness" in str(caught.value.expected)
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code != 0 and isinstance(result.exception, RosterError)
    fresh = kfm_home.parent / f"{kfm_home.name}-fresh"  # a client that never saw it
    monkeypatch.setenv(HOME_ENV, str(fresh))
    TrustStore(fresh).pin(ws.root, ws.root_fingerprint())
    result = runner.invoke(app, ["ledger", "verify", "--json"])
    assert result.exit_code == 1
    refused = json.loads(result.stdout)["refused"]
    assert refused["field"] == "serial" and "checkpoint #" in refused["expected"]
    with closing(ws.ledger()) as ledger:
        assert len(ledger.entries()) == 2  # and nothing was appended meanwhile


def test_pin_workspace_fixture_pins_a_copy(
    workspace: Workspace,
    tmp_path: Path,
    pin_workspace: Callable[[Path], None],
    trust_store: TrustStore,
) -> None:
    """A copied workspace needs its own pin (pins are per path), as an operator would set it."""
    copy = tmp_path / "copy"
    shutil.copytree(workspace.root, copy)
    with pytest.raises(TrustError, match="not pinned"):
        Workspace.open(copy, trust=trust_store).roster()
    pin_workspace(copy)
    assert Workspace.open(copy, trust=trust_store).roster().serial == workspace.roster().serial
