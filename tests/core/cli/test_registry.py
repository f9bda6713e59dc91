"""`kfm registry` and `kfm ci --version` on a workspace: edited version records are refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import rfc8785
from typer.testing import CliRunner

from core.cli import app
from core.decisions.trust import TrustStore
from core.registry.records import RecordVerificationError
from core.testing import push_version, write_version_dir
from core.workspace import Workspace, init_workspace

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, trust_store: TrustStore) -> Workspace:
    """A workspace holding 1.0.0 (submitted by dev, concerning steward sam), registered."""
    ws = init_workspace(
        tmp_path / "ws", trust=trust_store, root_passphrase="r", pipeline_passphrase="p"
    )
    with ws.decision_engine("p") as engine:
        record = push_version(
            engine.registry,
            "1.0.0",
            write_version_dir(tmp_path / "v"),
            ws.pipeline_signer("p"),
            concerned_stewards=["sam"],
        )
        engine.register(record, gates_json=b'{"passed": true}')
    return ws


def _edit_index(ws: Workspace, **changes: object) -> None:
    path = ws.path(ws.config.registry) / "climate" / "index" / "1.0.0.json"
    envelope = json.loads(path.read_text())
    record = json.loads(base64.b64decode(envelope["payload"]))
    record.update(changes)
    envelope["payload"] = base64.b64encode(rfc8785.dumps(record)).decode()
    path.write_text(json.dumps(envelope))


def _run(ws: Workspace, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--workspace", str(ws.root), "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


def test_pristine_version_verifies(workspace: Workspace) -> None:
    """A pushed version verifies and fsck finds nothing to report."""
    code, body = _run(workspace, "registry", "verify", "1.0.0")
    assert (code, body["ok"]) == (0, True)
    code, body = _run(workspace, "registry", "fsck")
    assert code == 0 and body["unverified"] == [] and body["unregistered"] == []
    code, body = _run(workspace, "registry", "show", "1.0.0")
    assert code == 0 and body["concerned_stewards"] == ["sam"] and body["format"] == 2


@pytest.mark.parametrize("changes", [{"concerned_stewards": []}, {"submitter": "alice"}])
def test_edited_record_is_reported_and_never_acted_on(workspace: Workspace, changes: dict) -> None:
    """Emptying the stewards or changing the submitter fails verify, fsck, ci and the engine's
    read of the record; the engine decides on the facts the ledger signed at registration."""
    _edit_index(workspace, **changes)
    code, body = _run(workspace, "registry", "verify", "1.0.0")
    assert code == 1 and "signature does not verify" in body["problems"][0]
    code, body = _run(workspace, "registry", "fsck")
    assert code == 1 and body["unverified"][0].startswith("1.0.0: ")
    code, body = _run(workspace, "ci", "--version", "1.0.0")
    assert code == 1 and [c["id"] for c in body["checks"]] == ["registry"]
    shown = runner.invoke(app, ["registry", "show", "1.0.0", "--workspace", str(workspace.root)])
    assert isinstance(shown.exception, RecordVerificationError)
    with workspace.decision_engine() as engine:
        with pytest.raises(RecordVerificationError):
            engine.version_record("1.0.0")
        facts = engine.version_facts("1.0.0")
    assert (facts.submitter, facts.concerned_stewards) == ("dev", ("sam",))
