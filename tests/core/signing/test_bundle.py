"""model.sig and integrity.json: signing, verification, tamper detection, interoperability."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import signing as ms_signing
from typer.testing import CliRunner

from core.cli import signing as signing_cli
from core.errors import SigningError, VerificationError
from core.signing.bundle import (
    INTEGRITY_FILE,
    SIGNATURE_FILE,
    check_model,
    sign_model,
    sign_model_sigstore,
    sigstore_unreachable,
    verify_model,
)
from core.signing.digests import hash_directory, multihash
from core.signing.keys import KeySigner, generate_key_pair, load_signer

MODEL_SIGNING_CLI = Path(sys.executable).parent / "model_signing"
FILES = ["model.onnx", "model_metadata.json", "xai/shap.json", "telemetry/run.jsonl"]


def _model(root: Path) -> Path:
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(name.encode() + os.urandom(3000))
    return root


def _signer(tmp_path: Path, key_id: str = "pipeline") -> KeySigner:
    paths = generate_key_pair(key_id, tmp_path / "keys", "pw")
    return load_signer(paths.private_key, "pw")


def _failed(report_checks: object) -> list[tuple[str, str]]:
    return [(c.name, c.file) for c in report_checks if c.status == "failed"]  # type: ignore[attr-defined]


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, KeySigner]:
    signer = _signer(tmp_path)
    model = _model(tmp_path / "model")
    sign_model(model, signer)
    return model, signer


def test_sign_writes_bundle_and_integrity_block(signed: tuple[Path, KeySigner]) -> None:
    """model.sig is a Sigstore bundle with a DSSE in-toto statement; integrity.json binds it."""
    model, signer = signed
    bundle = json.loads((model / SIGNATURE_FILE).read_text())
    assert bundle["mediaType"].startswith("application/vnd.dev.sigstore.bundle")
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert sorted(r["name"] for r in statement["predicate"]["resources"]) == sorted(FILES)
    manifest = hash_directory(model)
    integrity = json.loads((model / INTEGRITY_FILE).read_text())
    assert integrity["integrity"]["immutable"] is True
    assert integrity["integrity"]["hash"] == multihash(manifest.digest)
    assert integrity["root_digest"] == multihash(manifest.root_digest)
    assert statement["subject"][0]["digest"]["sha256"] == manifest.root_digest
    assert integrity["integrity"]["signature"]["href"] == SIGNATURE_FILE
    report = verify_model(model, public_key=signer.public_key)
    assert [c.status for c in report.checks] == ["ok"] * 4


def test_statement_bytes_are_deterministic(signed: tuple[Path, KeySigner]) -> None:
    """Re-signing the same files gives the same statement (only the ECDSA signature differs)."""
    model, signer = signed

    def payload() -> str:
        return str(json.loads((model / SIGNATURE_FILE).read_text())["dsseEnvelope"]["payload"])

    first = payload()
    sign_model(model, signer)
    assert payload() == first


_SIGN_IN_SUBPROCESS = """
import base64, json, sys
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric import ec
from core.signing.bundle import sign_model
from core.signing.keys import KeySigner
model = Path(sys.argv[1])
sign_model(model, KeySigner(key_id="k", private_key=ec.generate_private_key(ec.SECP256R1())))
bundle = json.loads((model / "model.sig").read_text())
sys.stdout.write(base64.b64decode(bundle["dsseEnvelope"]["payload"]).decode())
"""


def test_statement_is_the_same_in_every_process(tmp_path: Path) -> None:
    """Signing in processes with other hash seeds gives the same statement, ignored paths sorted."""
    model = _model(tmp_path / "model")
    repository = Path(__file__).resolve().parents[3]
    statements = []
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", _SIGN_IN_SUBPROCESS, str(model)],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(repository)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        statements.append(json.loads(result.stdout))
    assert statements[0] == statements[1]
    assert statements[0]["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore", INTEGRITY_FILE,
                         SIGNATURE_FILE],
    }  # fmt: skip
    assert statements[0]["subject"][0]["name"] == "model"


def test_private_key_reaches_model_signing_encrypted_and_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """model-signing reads the key from an encrypted PEM that is gone once signing is done."""
    seen: list[tuple[Path, bytes, object]] = []
    original = ms_signing.Config.use_elliptic_key_signer

    def spy(self: ms_signing.Config, *, private_key: Path, password: object = None) -> object:
        seen.append((Path(private_key), Path(private_key).read_bytes(), password))
        return original(self, private_key=private_key, password=password)  # type: ignore[arg-type]

    monkeypatch.setattr(ms_signing.Config, "use_elliptic_key_signer", spy)
    model = _model(tmp_path / "model")
    signer = _signer(tmp_path)
    sign_model(model, signer)
    ((path, pem, password),) = seen
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem
    assert isinstance(password, bytes) and len(password) >= 32
    assert not path.exists() and not path.parent.exists()
    assert verify_model(model, public_key=signer.public_key).ok


@pytest.mark.parametrize("name", FILES)
def test_flipped_byte_in_any_file_is_named(signed: tuple[Path, KeySigner], name: str) -> None:
    """One flipped bit in any file fails the files check naming that file."""
    model, signer = signed
    data = bytearray((model / name).read_bytes())
    data[len(data) // 2] ^= 0x80
    (model / name).write_bytes(bytes(data))
    report = check_model(model, public_key=signer.public_key)
    assert _failed(report.checks) == [("files", name)]
    with pytest.raises(VerificationError, match=name.replace(".", r"\.")):
        verify_model(model, public_key=signer.public_key)


def test_renamed_extra_and_missing_files_are_named(signed: tuple[Path, KeySigner]) -> None:
    """A renamed file, an extra file and a missing file each fail with their names."""
    model, signer = signed
    (model / "model.onnx").rename(model / "model_v2.onnx")
    (model / "xai" / "extra.json").write_text("{}")
    (model / "telemetry" / "run.jsonl").unlink()
    report = check_model(model, public_key=signer.public_key)
    details = {c.file: c.detail for c in report.checks if c.status == "failed"}
    assert set(details) == {"model.onnx", "xai/extra.json", "telemetry/run.jsonl"}
    assert "renamed" in details["model.onnx"] and "model_v2.onnx" in details["model.onnx"]
    assert details["xai/extra.json"].startswith("extra")
    assert details["telemetry/run.jsonl"].startswith("missing")


def test_wrong_key_is_refused(signed: tuple[Path, KeySigner], tmp_path: Path) -> None:
    """A public key other than the signer's fails the signature check."""
    model, _ = signed
    other = _signer(tmp_path, "mallory")
    report = check_model(model, public_key=other.public_key)
    assert _failed(report.checks) == [("signature", SIGNATURE_FILE)]
    assert "another key" in report.failures[0].detail


def test_edited_envelope_is_refused_with_a_message(signed: tuple[Path, KeySigner]) -> None:
    """An envelope whose statement was swapped fails with a non-empty explanation."""
    model, signer = signed
    path = model / SIGNATURE_FILE
    bundle = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"] = statement["predicate"]["resources"][1:]
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(bundle))
    report = check_model(model, public_key=signer.public_key)
    failed = report.failures
    assert failed[0].name == "signature"
    assert "DSSE envelope was edited" in failed[0].detail and "InvalidSignature" in failed[0].detail
    # The unauthenticated statement is also inconsistent with its root digest.
    assert any(c.name == "statement" for c in failed)


def test_edited_integrity_block_is_refused(signed: tuple[Path, KeySigner]) -> None:
    """An integrity.json whose hash does not match the signed manifest fails, naming the field."""
    model, signer = signed
    path = model / INTEGRITY_FILE
    data = json.loads(path.read_text())
    data["integrity"]["hash"] = multihash("0" * 64)
    path.write_text(json.dumps(data))
    report = check_model(model, public_key=signer.public_key)
    assert _failed(report.checks) == [("integrity", INTEGRITY_FILE)]
    assert "integrity.hash" in report.failures[0].detail


def test_without_key_files_checked_signature_skipped(signed: tuple[Path, KeySigner]) -> None:
    """Without --key the digests are still checked and the signature is reported as skipped."""
    model, _ = signed
    report = check_model(model)
    assert report.ok
    assert report.checks[0].status == "skipped"
    (model / "model.onnx").write_bytes(b"swapped")
    assert _failed(check_model(model).checks) == [("files", "model.onnx")]


def test_symbolic_link_added_after_signing_is_named(signed: tuple[Path, KeySigner]) -> None:
    """A symbolic link in a signed directory fails the files check naming it; the signature holds."""
    model, signer = signed
    (model / "xai" / "link.json").symlink_to(model / "model.onnx")
    report = check_model(model, public_key=signer.public_key)
    assert report.checks[0].status == "ok"
    assert _failed(report.checks) == [("files", "xai/link.json")]
    assert "symbolic link" in report.failures[0].detail


def test_unreadable_signature_file_is_reported(signed: tuple[Path, KeySigner]) -> None:
    """A model.sig that is not a bundle fails the signature and statement checks, with a reason."""
    model, signer = signed
    (model / SIGNATURE_FILE).write_text("not json")
    report = check_model(model, public_key=signer.public_key)
    assert _failed(report.checks) == [("signature", SIGNATURE_FILE), ("statement", SIGNATURE_FILE)]
    assert "not a Sigstore bundle (JSONDecodeError" in report.failures[0].detail


def test_shard_serialization_is_refused_with_advice(signed: tuple[Path, KeySigner]) -> None:
    """A statement of shard digests is refused naming its serialization and how to re-sign."""
    model, _ = signed
    path = model / SIGNATURE_FILE
    bundle = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["serialization"]["method"] = "shards"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(bundle))
    report = check_model(model)
    assert _failed(report.checks) == [("statement", SIGNATURE_FILE)]
    assert "unsupported signature serialization" in report.failures[0].detail
    assert "use_shard_serialization" in report.failures[0].detail


def test_missing_signature_fails(tmp_path: Path) -> None:
    """A directory without model.sig fails verification naming model.sig."""
    model = _model(tmp_path / "m")
    with pytest.raises(VerificationError) as caught:
        verify_model(model)
    assert caught.value.file == SIGNATURE_FILE


def test_empty_directory_is_not_signed(tmp_path: Path) -> None:
    """Signing a directory with no files is refused."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(SigningError, match="nothing to sign"):
        sign_model(tmp_path / "empty", _signer(tmp_path))


def test_model_signing_cli_verifies_our_signature(signed: tuple[Path, KeySigner]) -> None:
    """`model_signing verify key` accepts a model.sig written by kfm (integrity.json ignored)."""
    model, signer = signed
    public = model.parent / "pipeline.pub"
    public.write_text(signer.public_key_pem())
    result = subprocess.run(
        [str(MODEL_SIGNING_CLI), "verify", "key", str(model), "--public_key", str(public),
         "--signature", str(model / SIGNATURE_FILE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (model / "model.onnx").write_bytes(b"tampered")
    again = subprocess.run(
        [str(MODEL_SIGNING_CLI), "verify", "key", str(model), "--public_key", str(public),
         "--signature", str(model / SIGNATURE_FILE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode != 0


def test_kfm_verifies_model_signing_cli_signature(tmp_path: Path) -> None:
    """A model.sig written by `model_signing sign key` verifies with check_model."""
    model = _model(tmp_path / "m")
    key = ec.generate_private_key(ec.SECP256R1())
    # The tool's --password option fails on encrypted keys (str passed where bytes needed).
    private = tmp_path / "tool.key"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    result = subprocess.run(
        [str(MODEL_SIGNING_CLI), "sign", "key", str(model), "--private_key", str(private),
         "--signature", str(model / SIGNATURE_FILE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = verify_model(model, public_key=key.public_key())
    assert [(c.name, c.status) for c in report.checks] == [
        ("signature", "ok"),
        ("statement", "ok"),
        ("files", "ok"),
        ("integrity", "skipped"),
    ]
    assert report.manifest is not None
    assert report.manifest.root_digest == hash_directory(model).root_digest
    (model / "xai" / "shap.json").unlink()
    assert _failed(check_model(model, public_key=key.public_key()).checks) == [
        ("files", "xai/shap.json")
    ]


def test_sigstore_offline_fails_at_once(tmp_path: Path) -> None:
    """Keyless signing without Sigstore reachable fails quickly with a clear message."""
    model = _model(tmp_path / "m")
    started = time.monotonic()
    with pytest.raises(SigningError, match="needs the network") as caught:
        sign_model_sigstore(model, probe=lambda: "tuf-repo-cdn.sigstore.dev:443: unreachable")
    assert time.monotonic() - started < 1.0
    assert caught.value.hint is not None and "--key" in caught.value.hint
    assert not (model / SIGNATURE_FILE).exists()


def test_reachability_probe_reports_refused_connection() -> None:
    """The probe reports a refused local port within its timeout (no outside network used)."""
    started = time.monotonic()
    failure = sigstore_unreachable([("127.0.0.1", 1)], timeout=2.0)
    assert failure is not None and "127.0.0.1:1" in failure
    assert time.monotonic() - started < 2.5


def _app() -> typer.Typer:
    app = typer.Typer()
    signing_cli.register(app)
    return app


def test_cli_sign_and_verify(tmp_path: Path) -> None:
    """`kfm sign --key` then `kfm verify --key` exits 0; after tampering it exits 1 naming the file."""
    runner = CliRunner()
    app = _app()
    env = {"KFM_TEST_PW": "pw"}
    result = runner.invoke(
        app, ["keys", "new", "--id", "pipeline", "--out", str(tmp_path / "k"),
              "--passphrase-env", "KFM_TEST_PW"], env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model = _model(tmp_path / "m")
    result = runner.invoke(
        app, ["sign", str(model), "--key", str(tmp_path / "k" / "pipeline.key"),
              "--passphrase-env", "KFM_TEST_PW", "--json"], env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["integrity"]["immutable"] is True
    public = str(tmp_path / "k" / "pipeline.pub")
    result = runner.invoke(app, ["verify", str(model), "--key", public, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True
    (model / "xai" / "shap.json").write_text("[]")
    result = runner.invoke(app, ["verify", str(model / SIGNATURE_FILE), "--key", public])
    assert result.exit_code == 1
    assert "xai/shap.json" in result.output and "verification failed" in result.output


def test_cli_sign_needs_exactly_one_method(tmp_path: Path) -> None:
    """`kfm sign` without --key or --sigstore is refused with a message naming the options."""
    result = CliRunner().invoke(_app(), ["sign", str(_model(tmp_path / "m"))])
    assert result.exit_code != 0
    assert "--key/--sigstore" in str(result.exception)
