"""`kfm verify` trusts only a key the user names and covers every file a registry version holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.decisions.trust import TrustStore
from core.errors import VerificationError
from core.registry.layout import DEPLOY_OUTPUTS
from core.signing.bundle import sign_model
from core.signing.keys import public_key_pem
from core.testing import new_signer, push_version, write_version_dir
from core.workspace import Workspace, init_workspace

runner = CliRunner()


@pytest.fixture
def workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trust_store: TrustStore
) -> Workspace:
    """A workspace whose registry holds 1.0.0 laid out as deploy lays it out."""
    monkeypatch.delenv("KFM_WORKSPACE", raising=False)
    ws = init_workspace(
        tmp_path / "ws", trust=trust_store, root_passphrase="r", pipeline_passphrase="p"
    )
    pipeline = ws.pipeline_signer("p")
    layout = write_version_dir(tmp_path / "layout")
    deploy_outputs = {}
    for name in ("gates.json", "model.stac.json", "provenance.json"):
        deploy_outputs[name] = (layout / name).read_bytes()
        (layout / name).unlink()
    (layout / "model.sig").unlink()
    sign_model(layout, pipeline)  # the candidate's files, as deploy signs them
    for name, data in deploy_outputs.items():  # then the stages' outputs, outside model.sig
        (layout / name).write_bytes(data)
    (layout / "sovereignty").mkdir()
    for name in ("published.geojson", "report.json", "care.json"):
        (layout / "sovereignty" / name).write_text(f'{{"file": "{name}"}}\n')
    with ws.decision_engine("p") as engine:
        push_version(engine.registry, "1.0.0", layout, pipeline, concerned_stewards=["sam"])
    return ws


def _stored(ws: Workspace) -> Path:
    return ws.path(ws.config.registry) / "climate" / "models" / "1.0.0"


def _run(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["verify", *args, "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads(result.stdout)


def test_verify_without_a_trust_choice_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    """A model re-signed with a stranger's key does not pass `kfm verify` without --key."""
    model = tmp_path / "model"
    shutil.copytree(_stored(workspace), model)
    for name in (*DEPLOY_OUTPUTS, "model.sig", "integrity.json"):
        target = model / name
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    sign_model(model, new_signer("stranger"))
    result = runner.invoke(app, ["verify", str(model)])
    assert isinstance(result.exception, VerificationError)
    assert "no trusted key" in str(result.exception)
    assert result.exception.field == "--key / --workspace"
    pipeline_pub = tmp_path / "pipeline.pub"
    pipeline_pub.write_text(public_key_pem(workspace.pipeline_public_key()))
    code, body = _run(str(model), "--key", str(pipeline_pub))
    assert code == 1 and body["checks"][0]["status"] == "failed"
    code, body = _run(str(model), "--workspace", str(workspace.root))
    assert code == 1 and "another key" in body["checks"][0]["detail"]


def test_pristine_registry_version_verifies_whole(workspace: Workspace) -> None:
    """A pristine version passes, by --version or by its folder: record, files and model.sig."""
    for args in (
        ("--version", "1.0.0", "--workspace", str(workspace.root)),
        (str(_stored(workspace)), "--workspace", str(workspace.root)),
        (str(_stored(workspace) / "model.sig"), "--workspace", str(workspace.root)),
    ):
        code, body = _run(*args)
        assert code == 0, body
        names = [c["name"] for c in body["checks"]]
        assert names[:2] == ["record", "stored files"]
        assert "model.sig signature" in names and "model.sig files" in names
        stored = next(c for c in body["checks"] if c["name"] == "stored files")
        assert "6 deployment outputs are covered by it alone" in stored["detail"]


@pytest.mark.parametrize("name", ["gates.json", "sovereignty/report.json", "model.onnx"])
def test_any_changed_file_of_a_version_fails(workspace: Workspace, name: str) -> None:
    """A change to any stored file, under model.sig or not, fails and is named."""
    path = _stored(workspace) / name
    path.write_bytes(path.read_bytes() + b" ")
    code, body = _run("--version", "1.0.0", "--workspace", str(workspace.root))
    assert code == 1
    failed = [(c["name"], c["file"]) for c in body["checks"] if c["status"] == "failed"]
    assert failed == [("stored files", name)]


def test_version_record_signed_by_a_stranger_fails(workspace: Workspace, tmp_path: Path) -> None:
    """With --key naming another key, the version's record does not verify."""
    other = tmp_path / "other.pub"
    other.write_text(public_key_pem(new_signer("x").public_key))
    code, body = _run("--version", "1.0.0", "--workspace", str(workspace.root), "--key", str(other))
    assert code == 1 and [c["name"] for c in body["checks"]] == ["record"]
    assert "not signed by the pipeline key" in body["checks"][0]["detail"]
