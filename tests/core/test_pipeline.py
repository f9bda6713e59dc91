"""The pipeline: one staging for deploy and ci; kfm deploy end to end; blocked gates push nothing."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from core.candidate.load import load_candidate
from core.decisions.engine import DecisionEngine
from core.decisions.trust import TrustStore
from core.describe import OUTPUT_FILES, lineage_with_decisions
from core.errors import CandidateError, LedgerError
from core.pipeline import (
    DESCRIBE,
    LAYOUT,
    SIGNED,
    DeployError,
    complete_registration,
    deploy_candidate,
    main,
    stage_version,
    unregistered_versions,
)
from core.policy import DecisionPolicy, Policy, load_policy
from core.registry import layout
from core.registry.versions import Registry
from core.sovereignty.regions import load_regions
from core.testing import (
    MemoryLedger,
    MemoryStore,
    default_reviewers,
    make_governance,
    push_version,
    write_version_dir,
)
from core.workspace import Workspace, init_workspace


@pytest.fixture
def workspace(tmp_path: Path, trust_store: TrustStore) -> Workspace:
    """A fresh workspace with the project's policy and regions."""
    return init_workspace(
        tmp_path / "ws", trust=trust_store, root_passphrase="r", pipeline_passphrase="p"
    )


def strict_policy(ws: Workspace) -> Policy:
    """The workspace policy with an accuracy threshold no model reaches."""
    policy_file = ws.path("governance/policy.toml")
    text = re.sub(r"(?m)^rmse_max = [0-9.]+", "rmse_max = 0.0001", policy_file.read_text())
    policy_file.write_text(text)
    return load_policy(policy_file)


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
    record = engine.registry.show(outcome.version)
    footprint = load_candidate(reference_candidate_dir).footprint
    assert record.footprint == outcome.footprint == footprint  # from the data, not declared
    assert record.model_family == "kfm-climate-downscaling"
    assert record.concerned_stewards == outcome.concerned_stewards
    assert len(outcome.concerned_stewards) == 4 and outcome.to_dict()["footprint"] == [*footprint]
    names = {f.name for f in record.manifest.files}
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
    assert [e.kind for e in engine.ledger.entries()] == ["registered", "gates-attested"]
    facts = engine.state().facts[outcome.version]
    assert facts.record_sha256 == engine.registry.show(outcome.version).digest
    assert facts.submitter == "pipeline" and facts.model_family
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
    engine = engine_for(workspace)
    outcome = deploy_candidate(
        reference_candidate_dir,
        engine=engine,
        policy=strict_policy(workspace),
        regions_path=workspace.regions_path,
        submitter="pipeline",
    )
    assert outcome.blocked and "accuracy" in outcome.gates["blocking_gates"]
    assert engine.registry.list() == [] and engine.ledger.entries() == []
    assert engine.registry.store.list("climate") == []


def test_declared_box_that_disagrees_with_the_data_is_refused(
    candidate: Path, workspace: Workspace
) -> None:
    """1.0.1 declaring bbox [-40,15,-30,20] is refused before anything is pushed or recorded."""
    path = candidate / "model_metadata.json"
    metadata = json.loads(path.read_text())
    metadata["training_domain"]["bbox"] = [-40.0, 15.0, -30.0, 20.0]
    metadata["version"] = "1.0.1"
    path.write_text(json.dumps(metadata))
    summary = json.loads((candidate / "model_summary.json").read_text())
    (candidate / "model_summary.json").write_text(json.dumps({**summary, "version": "1.0.1"}))
    engine = engine_for(workspace)
    with pytest.raises(CandidateError, match="declared bbox") as caught:
        deploy_candidate(
            candidate,
            engine=engine,
            policy=workspace.policy(),
            regions_path=workspace.regions_path,
            submitter="pipeline",
        )
    assert (caught.value.file, caught.value.field) == (
        "model_metadata.json",
        "training_domain.bbox",
    )
    assert engine.registry.list() == [] and engine.ledger.entries() == []


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


@pytest.mark.slow
def test_unsigned_staging_lays_out_the_version(
    reference_candidate_dir: Path, workspace: Workspace, tmp_path: Path
) -> None:
    """An unsigned staging holds the candidate's files, gates, screen and describe outputs."""
    staged = stage_version(
        load_candidate(reference_candidate_dir),
        tmp_path / "out",
        policy=workspace.policy(),
        regions=load_regions(workspace.regions_path),
    )
    assert staged.layout == tmp_path / "out" / LAYOUT and not staged.blocked
    top = {p.name for p in staged.layout.iterdir()}
    assert top == {*layout.CANDIDATE_FILES, *layout.CANDIDATE_DIRS, *layout.DEPLOY_OUTPUTS}
    assert (staged.layout / layout.GATES_FILE).read_bytes() == staged.gates_json
    described = tmp_path / "out" / DESCRIBE
    assert sorted(p.name for p in described.iterdir()) == sorted(OUTPUT_FILES)
    for name in (layout.ITEM_FILE, layout.PROVENANCE_FILE):
        assert (staged.layout / name).read_bytes() == (described / name).read_bytes()
    for name in layout.CANDIDATE_FILES:
        assert (staged.layout / name).read_bytes() == (reference_candidate_dir / name).read_bytes()
    assert not (tmp_path / "out" / SIGNED).exists()


@pytest.mark.slow
def test_signed_staging_stops_at_blocked_gates(
    reference_candidate_dir: Path, workspace: Workspace, tmp_path: Path
) -> None:
    """With the pipeline key, a blocked report stops before signing: nothing signed or laid out."""
    staged = stage_version(
        load_candidate(reference_candidate_dir),
        tmp_path / "out",
        policy=strict_policy(workspace),
        regions=load_regions(workspace.regions_path),
        signer=workspace.pipeline_signer("p"),
    )
    assert staged.blocked and staged.layout is None
    assert "accuracy" in staged.gates.to_dict()["blocking_gates"]
    assert not (tmp_path / "out").exists()


def test_signing_and_a_given_signature_are_refused_together(
    reference_candidate_dir: Path, workspace: Workspace, tmp_path: Path
) -> None:
    """A staging is signed with the pipeline key or given a signature, never both."""
    with pytest.raises(DeployError, match="not both"):
        stage_version(
            load_candidate(reference_candidate_dir),
            tmp_path / "out",
            policy=workspace.policy(),
            regions=load_regions(workspace.regions_path),
            signer=workspace.pipeline_signer("p"),
            signature=tmp_path / "model.sig",
        )
    assert not (tmp_path / "out").exists()


def test_staging_command_reports_a_bad_candidate(
    tmp_path: Path, workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """python -m core.pipeline on a missing candidate exits 2, names it, and writes nothing."""
    missing = tmp_path / "missing"
    code = main(
        [
            str(missing),
            str(tmp_path / "out"),
            "--policy",
            str(workspace.path(workspace.config.policy)),
            "--regions",
            str(workspace.regions_path),
        ]
    )
    assert code == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _memory_engine(gates: bytes) -> tuple[DecisionEngine, Any]:
    """An engine over memory fakes holding 1.0.0 pushed but not registered, with ``gates``."""
    gov = make_governance(default_reviewers())
    engine = DecisionEngine(
        ledger=MemoryLedger(),
        registry=Registry(MemoryStore(), pipeline_key=gov["pipeline"].public_key),
        roster=gov.roster,
        policy=DecisionPolicy(),
        pipeline=gov["pipeline"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        source = write_version_dir(Path(tmp) / "v")
        (source / "gates.json").write_bytes(gates)
        push_version(engine.registry, "1.0.0", source, gov["pipeline"], concerned_stewards=["sam"])
    return engine, gov


def test_complete_registration_registers_a_cut_off_deploy_once() -> None:
    """An unregistered version is found, registered with its signed facts, and only once."""
    engine, _ = _memory_engine(b'{"passed": true}')
    assert unregistered_versions(engine) == ["1.0.0"]
    appended = complete_registration(engine, "1.0.0")
    assert [e.kind for e in appended] == ["registered", "gates-attested"]
    assert unregistered_versions(engine) == []
    assert engine.version_facts("1.0.0").concerned_stewards == ("sam",)
    with pytest.raises(LedgerError, match="already registered"):
        complete_registration(engine, "1.0.0")


def test_complete_registration_refuses_what_deploy_would_not_register() -> None:
    """Blocked gates or a changed stored file: nothing is appended."""
    blocked, _ = _memory_engine(b'{"passed": false}')
    with pytest.raises(DeployError, match="gates did not pass"):
        complete_registration(blocked, "1.0.0")
    assert blocked.ledger.entries() == []
    tampered, _ = _memory_engine(b'{"passed": true}')
    tampered.registry.store.write("climate/models/1.0.0/model.onnx", b"ONNX swapped")
    with pytest.raises(DeployError, match="does not verify"):
        complete_registration(tampered, "1.0.0")
    assert tampered.ledger.entries() == []
