"""The PROV lineage: PROV-JSON schema, explicit relation ids, time order, later stages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rdflib
from prov.model import ProvDocument

from core.candidate.load import Candidate, load_candidate
from core.decisions.ledger import LedgerEntry
from core.describe import (
    AgentRef,
    EntityRef,
    LineageIds,
    StageRecord,
    candidate_stages,
    check_prov_order,
    check_prov_unified,
    decision_stages,
    deployment_stages,
    lineage_document,
    lineage_with_decisions,
    prov_json,
    prov_n,
    prov_turtle,
    read_stages,
)
from core.describe.checks import check_prov_json_schema
from core.describe.lineage import training_document, training_end
from core.describe.validate import prov_json_problems
from core.errors import DescribeError

ELEMENTS = {"prefix", "entity", "activity", "agent", "bundle"}


@pytest.fixture(scope="module")
def loaded(reference_candidate_dir: Path) -> Candidate:
    return load_candidate(reference_candidate_dir)


def later_stages(candidate: Candidate) -> list[StageRecord]:
    """Gates, screening, push and an approval, as later stages would record them."""
    ids = LineageIds(candidate.metadata)
    t0 = training_end(training_document(candidate), candidate.metadata) + timedelta(hours=1)
    pipeline = AgentRef(id="kfm:agent/pipeline", label="kfm pipeline")
    reviewer = AgentRef(id="kfm:agent/reviewer/ana", label="Ana, FAIR+CARE Council", kind="person")
    gates = EntityRef(
        id=ids.gate_results,
        label="gates.json",
        type="kfm:GateResults",
        attributes={"kfm:checksum": "1220" + "ab" * 32},
    )
    return [
        StageRecord(
            kind="validation",
            id=ids.activity("validation"),
            label="gates",
            started=t0,
            ended=t0 + timedelta(minutes=2),
            agent=pipeline,
            used=(EntityRef(id=ids.model), EntityRef(id=ids.validation_data)),
            generated=(gates,),
        ),
        StageRecord(
            kind="screening",
            id=ids.activity("screening"),
            label="sovereignty screen",
            started=t0 + timedelta(minutes=5),
            ended=t0 + timedelta(minutes=6),
            agent=pipeline,
            used=(EntityRef(id=ids.stac_item),),
        ),
        StageRecord(
            kind="push",
            id=ids.activity("push"),
            label="registry push",
            started=t0 + timedelta(minutes=7),
            ended=t0 + timedelta(minutes=8),
            agent=pipeline,
            used=(EntityRef(id=ids.stac_item), EntityRef(id=ids.model)),
            generated=(EntityRef(id=ids.registry_version, type="kfm:RegistryVersion"),),
        ),
        StageRecord(
            kind="approval",
            id=ids.activity("approval/ana"),
            label="approve",
            started=t0 + timedelta(days=1),
            ended=t0 + timedelta(days=1),
            agent=reviewer,
            used=(EntityRef(id=ids.registry_version), gates),
            informed_by=(ids.activity("push"),),
        ),
    ]


def test_prov_json_validates_against_the_schema(loaded: Candidate) -> None:
    """The full lineage serializes to PROV-JSON valid against the packaged PROV-JSON schema."""
    doc = lineage_document(loaded, candidate_stages(loaded, later_stages(loaded)))
    assert prov_json_problems(json.loads(prov_json(doc))) == []
    assert check_prov_json_schema(doc) == []


def test_prov_json_schema_rejects_a_broken_document(loaded: Candidate) -> None:
    """The schema check can fail: a generation without its entity is refused."""
    data = json.loads(prov_json(lineage_document(loaded, candidate_stages(loaded))))
    relation, record = next(iter(data["wasGeneratedBy"].items()))
    del record["prov:entity"]
    problems = prov_json_problems(data)
    assert [p.field for p in problems] == [f"$.wasGeneratedBy['{relation}']"]
    assert "prov:entity" in problems[0].message and problems[0].schema == "W3C PROV-JSON schema"


def test_every_relation_has_an_explicit_identifier(loaded: Candidate) -> None:
    """No relation in the PROV-JSON gets a blank-node id."""
    data = json.loads(
        prov_json(lineage_document(loaded, candidate_stages(loaded, later_stages(loaded))))
    )
    relations = {k: v for k, v in data.items() if k not in ELEMENTS}
    assert relations and all(
        not rid.startswith("_:") for group in relations.values() for rid in group
    )


def test_chain_runs_from_training_data_to_decision_in_time_order(loaded: Candidate) -> None:
    """Training data → training → model → evaluation → validation → describe → screening → push
    → approval are linked and their times never go backwards; order checks and unify pass."""
    ids = LineageIds(loaded.metadata)
    doc = lineage_document(loaded, candidate_stages(loaded, later_stages(loaded)))
    assert check_prov_order(doc) == [] and check_prov_unified(doc) == []
    data = json.loads(prov_json(doc))
    activities = data["activity"]
    chain = [
        "training",
        "evaluation",
        "validation",
        "describe",
        "screening",
        "push",
        "approval/ana",
    ]
    starts = [activities[ids.activity(k)]["prov:startTime"] for k in chain]
    assert starts == sorted(starts)
    generated = {(g["prov:entity"], g["prov:activity"]) for g in data["wasGeneratedBy"].values()}
    used = {(u["prov:activity"], u["prov:entity"]) for u in data["used"].values()}
    assert (ids.model, ids.activity("training")) in generated
    assert (ids.activity("describe"), ids.gate_results) in used
    assert (ids.stac_item, ids.activity("describe")) in generated
    assert (ids.activity("push"), ids.stac_item) in used
    assert (ids.activity("approval/ana"), ids.registry_version) in used
    assert any(k.startswith("kfm:data/") and v.get("kfm:sha256") for k, v in data["entity"].items())


def test_order_check_flags_use_before_generation(loaded: Candidate) -> None:
    """A stage that uses the STAC item before describe generated it is reported."""
    ids = LineageIds(loaded.metadata)
    early = training_end(training_document(loaded), loaded.metadata) - timedelta(days=1)
    stage = StageRecord(
        kind="screening",
        id=ids.activity("screening"),
        label="too early",
        started=early,
        ended=early,
        agent=AgentRef(id="kfm:agent/pipeline", label="p"),
        used=(EntityRef(id=ids.stac_item),),
    )
    findings = check_prov_order(lineage_document(loaded, candidate_stages(loaded, [stage])))
    assert any("before it is generated" in f.message for f in findings)


def test_order_check_flags_activity_ending_before_it_starts() -> None:
    """An activity whose end precedes its start (which unified() accepts) is reported."""
    doc = ProvDocument()
    doc.add_namespace("kfm", "https://kfm.example/ns#")
    start = datetime(2026, 1, 2, tzinfo=UTC)
    doc.activity("kfm:activity/x", start, start - timedelta(seconds=1))
    assert check_prov_unified(doc) == []
    assert [f.subject for f in check_prov_order(doc)] == ["kfm:activity/x"]


def test_unified_check_reports_conflicting_records() -> None:
    """Two records of one activity with different start times cannot be unified."""
    doc = ProvDocument()
    doc.add_namespace("kfm", "https://kfm.example/ns#")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    doc.activity("kfm:activity/x", t, t)
    doc.activity("kfm:activity/x", t + timedelta(days=1), t + timedelta(days=1))
    assert check_prov_unified(doc)


def test_times_come_from_the_candidate_not_the_clock(loaded: Candidate) -> None:
    """Derived stage times equal the training end; two builds give identical text in all formats."""
    end = training_end(training_document(loaded), loaded.metadata)
    stages = candidate_stages(loaded)
    assert all(s.started == end and s.timing == "derived" for s in stages)
    first = lineage_document(loaded, stages)
    second = lineage_document(loaded, candidate_stages(loaded))
    assert prov_json(first) == prov_json(second)
    assert prov_n(first) == prov_n(second)
    assert prov_turtle(first) == prov_turtle(second)


def test_turtle_is_prov_o(loaded: Candidate) -> None:
    """The Turtle parses with rdflib and types the describe activity as prov:Activity."""
    ids = LineageIds(loaded.metadata)
    graph = rdflib.Graph().parse(
        data=prov_turtle(lineage_document(loaded, candidate_stages(loaded))), format="turtle"
    )
    prov = rdflib.Namespace("http://www.w3.org/ns/prov#")
    describe = rdflib.URIRef(
        "https://kfm.example/ns#" + ids.activity("describe").removeprefix("kfm:")
    )
    assert (describe, rdflib.RDF.type, prov.Activity) in graph
    assert graph.value(describe, prov.startedAtTime) is not None


def test_stage_record_round_trip_and_refusals() -> None:
    """Stage records round-trip through JSON; naive times and reversed times are refused."""
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    stage = StageRecord(
        kind="push",
        id="kfm:activity/m-1.0.0/push",
        label="push",
        started=t,
        ended=t + timedelta(seconds=3),
        agent=AgentRef(id="kfm:agent/pipeline", label="p"),
        generated=(EntityRef(id="kfm:registry/m-1.0.0", attributes={"kfm:n": 1}),),
    )
    assert read_stages([stage.to_dict()]) == [stage]
    naive = stage.to_dict() | {"started": "2026-03-01T12:00:00"}
    with pytest.raises(DescribeError):
        read_stages([naive])
    with pytest.raises(DescribeError):
        read_stages([stage.to_dict() | {"ended": "2026-03-01T11:00:00Z"}])
    with pytest.raises(DescribeError):
        read_stages({"not": "a list"})


def test_stages_disagreeing_about_an_entity_are_refused(loaded: Candidate) -> None:
    """Two stages giving one entity different checksums raise a DescribeError."""
    ids = LineageIds(loaded.metadata)
    t = training_end(training_document(loaded), loaded.metadata) + timedelta(hours=1)
    agent = AgentRef(id="kfm:agent/pipeline", label="p")
    stages = [
        StageRecord(
            kind="validation",
            id=ids.activity("validation"),
            label="gates",
            started=t,
            ended=t,
            agent=agent,
            generated=(
                EntityRef(id=ids.gate_results, attributes={"kfm:checksum": "1220" + "00" * 32}),
            ),
        ),
        StageRecord(
            kind="push",
            id=ids.activity("push"),
            label="push",
            started=t,
            ended=t,
            agent=agent,
            used=(EntityRef(id=ids.gate_results, attributes={"kfm:checksum": "1220" + "11" * 32}),),
        ),
    ]
    with pytest.raises(DescribeError):
        lineage_document(loaded, candidate_stages(loaded, stages))


def _entry(seq: int, kind: str, version: str, target: str | None = None) -> LedgerEntry:
    import base64

    statement = {"predicate": {"reason": f"reason {seq}"}}
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    return LedgerEntry(
        seq=seq,
        prev_hash="0" * 64,
        entry_hash=f"{seq:064x}",
        recorded_at="2026-11-27T10:00:00Z",
        envelope=json.dumps({"payload": payload, "payloadType": "x", "signatures": []}),
        kind=kind,
        actor="pipeline" if kind == "registered" else f"ana-{seq}",
        role="pipeline" if kind == "registered" else "reviewer",
        version=version,
        time=f"2026-11-27T10:00:0{seq}Z",
        target_version=target,
    )


def test_deployment_stages_chain_to_push_in_time_order(loaded: Candidate, tmp_path: Path) -> None:
    """Validation, signing, screening and push are derived, checksummed and in time order."""
    (tmp_path / "report.json").write_text("{}\n")
    (tmp_path / "model.sig").write_text("sig\n")
    stages = deployment_stages(
        loaded,
        gates_json=b'{"passed": true}',
        signature=tmp_path / "model.sig",
        screen_dir=tmp_path,
    )
    assert [s.kind for s in stages] == ["validation", "signing", "screening", "push"]
    assert {s.timing for s in stages} == {"derived"}
    doc = lineage_document(loaded, candidate_stages(loaded, stages))
    assert check_prov_order(doc) == [] and check_prov_unified(doc) == []
    data = json.loads(prov_json(doc))
    ids = LineageIds(loaded.metadata)
    assert data["entity"][ids.registry_version]["kfm:version"] == loaded.metadata.version
    assert f"kfm:sovereignty/{ids.tag}/report.json" in data["entity"]
    again = deployment_stages(
        loaded,
        gates_json=b'{"passed": true}',
        signature=tmp_path / "model.sig",
        screen_dir=tmp_path,
    )
    assert again == stages
    with pytest.raises(DescribeError, match="passed"):
        deployment_stages(loaded, gates_json=b"{}")


def test_decisions_append_to_a_versions_provenance(loaded: Candidate, tmp_path: Path) -> None:
    """Ledger entries of the version (and rollbacks to it) become timed PROV activities."""
    (tmp_path / "report.json").write_text("{}\n")
    stages = deployment_stages(loaded, gates_json=b'{"passed": true}', screen_dir=tmp_path)
    stored = prov_json(lineage_document(loaded, candidate_stages(loaded, stages)))
    md = loaded.metadata
    entries = [
        _entry(1, "registered", md.version),
        _entry(2, "approve", md.version),
        _entry(3, "approve", "9.9.9"),
        _entry(4, "rollback", "9.9.9", target=md.version),
    ]
    data = lineage_with_decisions(stored, entries, name=md.name, version=md.version)
    ids = LineageIds(md)
    decisions = {k: v for k, v in data["activity"].items() if v.get("kfm:seq") is not None}
    assert sorted(decisions) == [
        ids.activity("approval/2"),
        ids.activity("registration/1"),
        ids.activity("rollback/4"),
    ]
    assert decisions[ids.activity("approval/2")]["kfm:reason"] == "reason 2"
    assert decisions[ids.activity("approval/2")]["kfm:timing"] == "recorded"
    doc = ProvDocument.deserialize(content=json.dumps(data), format="json")
    assert check_prov_order(doc) == []
    with pytest.raises(DescribeError, match="unknown decision kind"):
        decision_stages([_entry(5, "bless", md.version)], name=md.name, version=md.version)
