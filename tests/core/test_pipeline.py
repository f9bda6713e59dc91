"""kfm deploy end to end on the reference candidate: blocked gates push nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.decisions.engine import DecisionEngine
from core.describe import lineage_with_decisions
from core.pipeline import DeployError, deploy_candidate
from core.workspace import Workspace, init_workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace with the project's policy and regions."""
    return init_workspace(tmp_path / "ws", root_passphrase="r", pipeline_passphrase="p")


def engine_for(ws: Workspace) -> DecisionEngine:
    return DecisionEngine(
        ledger=ws.ledger(),
        registry=ws.registry(),
        roster=ws.roster(),
        policy=ws.policy().decisions,
        pipeline=ws.pipeline_signer("p"),
    )


@pytest.mark.slow
def test_deploy_pushes_and_registers(reference_candidate_dir: Path, workspace: Workspace) -> None:
    """A passing candidate lands in the registry layout with signed attested/registered records."""
    engine = engine_for(workspace)
    outcome = deploy_candidate(
        reference_candidate_dir,
        engine=engine,
        policy=workspace.policy(),
        regions_path=workspace.regions_path,
        submitter="pipeline",
    )
    assert not outcome.blocked, outcome.gates.get("blocking_gates")
    names = {f.name for f in engine.registry.show(outcome.version).manifest.files}
    assert {"model.onnx", "model.stac.json", "provenance.json", "model.sig", "gates.json"} <= names
    assert any(n.startswith("sovereignty/") for n in names)
    assert engine.registry.verify(outcome.version).ok
    item = json.loads(engine.registry.read_file(outcome.version, "model.stac.json"))
    care = json.loads(engine.registry.read_file(outcome.version, "sovereignty/care.json"))
    assert item["properties"]["kfm:care"]["screening"] == care["kfm:care"]["screening"]
    signature = engine.registry.show(outcome.version).manifest.by_name()["model.sig"]
    assert item["assets"]["signature"]["file:checksum"] == signature.multihash
    assert item["properties"]["kfm:integrity"]["immutable"] is True
    provenance = engine.registry.read_file(outcome.version, "provenance.json")
    lineage = lineage_with_decisions(
        provenance,
        engine.ledger.entries(),
        name=item["id"].rsplit("-", 1)[0],
        version=outcome.version,
    )
    kinds = [a["prov:type"]["$"] for a in lineage["activity"].values() if "kfm:timing" in a]
    for kind in ("Validation", "Signing", "Describe", "Screening", "Push", "Attestation"):
        assert f"kfm:{kind}" in kinds
    assert [e.kind for e in engine.ledger.entries()] == ["gates-attested", "registered"]
    assert engine.state().staging == outcome.version
    with pytest.raises(DeployError, match="written once"):
        deploy_candidate(
            reference_candidate_dir,
            engine=engine,
            policy=workspace.policy(),
            regions_path=workspace.regions_path,
            submitter="pipeline",
        )


@pytest.mark.slow
def test_blocked_gate_records_nothing(reference_candidate_dir: Path, workspace: Workspace) -> None:
    """An unreachable accuracy threshold blocks before push: registry and ledger stay empty."""
    policy_file = workspace.path("governance/policy.toml")
    text = re.sub(r"(?m)^rmse_max = [0-9.]+", "rmse_max = 0.0001", policy_file.read_text())
    policy_file.write_text(text)
    engine = engine_for(workspace)
    outcome = deploy_candidate(
        reference_candidate_dir,
        engine=engine,
        policy=workspace.policy(),
        regions_path=workspace.regions_path,
        submitter="pipeline",
    )
    assert outcome.blocked and "accuracy" in outcome.gates["blocking_gates"]
    assert engine.registry.list() == [] and engine.ledger.entries() == []
    assert engine.registry.store.list("climate") == []


def test_unknown_submitter_is_refused(tmp_path: Path, workspace: Workspace) -> None:
    """The submitter must be on the roster (self-approval is checked against this id)."""
    with pytest.raises(DeployError, match="not on the roster"):
        deploy_candidate(
            tmp_path,
            engine=engine_for(workspace),
            policy=workspace.policy(),
            regions_path=workspace.regions_path,
            submitter="mallory",
        )
