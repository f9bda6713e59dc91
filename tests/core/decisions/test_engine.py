"""Promotions and rollbacks derived from signed decision records, reviewers holding no pipeline key."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import rfc8785

from core.decisions.engine import DecisionEngine, SubmitOutcome, rollback_to_last_good_version
from core.decisions.records import EvidenceRef
from core.decisions.verify import verify_ledger
from core.errors import AuthorizationError, LedgerError, VerificationError
from core.policy import DecisionPolicy
from core.registry.versions import Registry
from core.testing import (
    FixedClock,
    Governance,
    MemoryLedger,
    MemoryStore,
    default_reviewers,
    make_governance,
    push_version,
    register_test_version,
    signed_decision,
    write_version_dir,
)

RUN = EvidenceRef(name="monitoring/x/run/drift_summary.json", sha256="a" * 64)


@dataclass
class World:
    gov: Governance
    registry: Registry
    ledger: MemoryLedger
    engine: DecisionEngine
    pipeline: DecisionEngine
    clock: FixedClock
    tmp: Path

    def deploy(
        self,
        version: str,
        *,
        submitter: str = "dev",
        stewards: Sequence[str] = ("sam",),
        gates_failed: Sequence[str] = (),
    ) -> None:
        source = write_version_dir(self.tmp / version, seed=version)
        register_test_version(
            self.pipeline,
            source,
            version,
            submitter=submitter,
            concerned_stewards=stewards,
            gates_failed=gates_failed,
        )

    def breach(self, version: str, *kinds: str) -> None:
        self.clock.advance(seconds=1)
        self.pipeline.record_monitoring(version, "a run", [RUN], breaches=kinds)  # type: ignore[arg-type]

    def vote(
        self,
        actor: str,
        kind: str,
        version: str,
        *,
        role: str | None = None,
        reason: str = "looked at gates and lineage",
        gate: str | None = None,
    ) -> dict:
        roles = self.gov.roster.entry(actor).roles  # type: ignore[union-attr]
        self.clock.advance(seconds=1)
        return signed_decision(
            self.gov[actor],
            kind=kind,
            role=role or roles[0],
            version=version,
            subject=self.registry.show(version).subject,
            time=self.clock(),
            anchor=self.engine.state().anchor,
            reason=reason,
            **({"gate": gate} if gate else {}),
        )

    def submit(self, actor: str, kind: str, version: str, **kw: str) -> SubmitOutcome:
        return self.engine.submit(self.vote(actor, kind, version, **kw))

    def approve_all(self, version: str) -> None:
        for actor in ("alice", "bob", "sam"):
            self.submit(actor, "approve", version)


@pytest.fixture
def world(tmp_path: Path) -> World:
    gov = make_governance(default_reviewers())
    clock = FixedClock()
    registry = Registry(MemoryStore(), pipeline_key=gov["pipeline"].public_key, clock=clock)
    ledger = MemoryLedger(clock=clock)
    common = {"ledger": ledger, "registry": registry, "roster": gov.roster, "clock": clock}
    engine = DecisionEngine(policy=DecisionPolicy(), **common)  # type: ignore[arg-type]
    pipeline = DecisionEngine(
        policy=DecisionPolicy(),
        pipeline=gov["pipeline"],
        **common,  # type: ignore[arg-type]
    )
    return World(gov, registry, ledger, engine, pipeline, clock, tmp_path)


def test_quorum_and_steward_promote_at_once(world: World) -> None:
    """Two council approvals plus the concerned steward promote at once, derived, no key."""
    world.deploy("1.0.0")
    world.submit("alice", "approve", "1.0.0")
    assert world.engine.state().versions["1.0.0"].state == "under_review"
    world.submit("bob", "approve", "1.0.0")
    assert world.engine.state().production is None  # steward sam has not approved yet
    outcome = world.submit("sam", "approve", "1.0.0")
    assert outcome.entry.kind == "approve" and world.engine.pipeline is None
    assert [(e.kind, e.version, e.derived) for e in outcome.events] == [
        ("promotion", "1.0.0", True)
    ]
    assert [e.kind for e in world.ledger.entries()] == [
        "registered",
        "gates-attested",
        "approve",
        "approve",
        "approve",
    ]  # the promotion is derived, never a row
    state = world.engine.state()
    assert state.production == "1.0.0" and state.versions["1.0.0"].state == "promoted"
    assert verify_ledger(world.ledger.entries(), world.gov.roster, DecisionPolicy()).ok


def test_self_approval_is_refused(world: World) -> None:
    """The submitter cannot approve their own model, and nothing is appended."""
    world.deploy("1.0.0", submitter="dev")
    before = len(world.ledger.entries())
    with pytest.raises(AuthorizationError, match="self-approval"):
        world.submit("dev", "approve", "1.0.0")
    assert len(world.ledger.entries()) == before


def test_duplicate_vote_and_replayed_record_are_refused(world: World) -> None:
    """A reviewer approves once; the same signed record cannot be appended twice."""
    world.deploy("1.0.0")
    envelope = world.vote("alice", "approve", "1.0.0")
    world.engine.submit(envelope)
    with pytest.raises(AuthorizationError, match="already approved"):
        world.engine.submit(envelope)
    with pytest.raises(AuthorizationError, match="already approved"):
        world.submit("alice", "approve", "1.0.0")


def test_record_for_another_version_is_refused(world: World) -> None:
    """A record signed about version A cannot be replayed as an approval of version B."""
    world.deploy("1.0.0")
    world.deploy("1.1.0")
    envelope = world.vote("alice", "approve", "1.0.0")
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["predicate"]["version"] = "1.1.0"
    forged = dict(envelope, payload=base64.b64encode(rfc8785.dumps(payload)).decode())
    with pytest.raises(VerificationError, match="another model|signature does not verify"):
        world.engine.submit(forged)


def test_council_veto_blocks_pending_version(world: World) -> None:
    """A council veto before promotion leaves the version vetoed and never promoted."""
    world.deploy("1.0.0")
    world.submit("carol", "veto", "1.0.0", reason="bias in the tails")
    with pytest.raises(LedgerError, match="vetoed"):
        world.submit("alice", "approve", "1.0.0")
    assert world.engine.state().versions["1.0.0"].state == "vetoed"


def test_duplicate_veto_is_refused(world: World) -> None:
    """A reviewer vetoes a version once: a second veto by the same person is refused."""
    world.deploy("1.0.0")
    world.submit("carol", "veto", "1.0.0", reason="bias in the tails")
    before = len(world.ledger.entries())
    with pytest.raises(AuthorizationError, match="already vetoed"):
        world.submit("carol", "veto", "1.0.0", reason="still biased")
    assert len(world.ledger.entries()) == before


def test_unconcerned_steward_veto_is_refused(world: World) -> None:
    """A steward whose region the footprint does not touch cannot veto."""
    world.deploy("1.0.0", stewards=("sam",))
    with pytest.raises(AuthorizationError, match="not concerned"):
        world.submit("tess", "veto", "1.0.0")


def test_veto_of_production_rolls_back_to_last_good(world: World) -> None:
    """A concerned steward's veto of production rolls back, with the three files written."""
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    world.deploy("1.1.0")
    world.approve_all("1.1.0")
    state = world.engine.state()
    assert state.production == "1.1.0" and state.versions["1.0.0"].state == "superseded"
    outcome = world.submit("sam", "veto", "1.1.0", reason="outputs reveal a sacred site")
    assert outcome.entry.kind == "veto"
    assert [(e.kind, e.production_after) for e in outcome.events] == [("rollback", "1.0.0")]
    state = world.engine.state()
    assert state.production == "1.0.0"
    assert state.versions["1.1.0"].state == "rolled_back"
    folder = f"{outcome.entry.seq:08d}-1.1.0"
    keys = world.registry.store.list("climate/rollbacks")
    assert keys == sorted(
        f"climate/rollbacks/{folder}/{name}"
        for name in ("drift_summary.json", "rollback_report.json", "sovereignty_conflict.json")
    )
    report = json.loads(world.registry.read_rollback(folder, "rollback_report.json"))
    assert report["rolled_back"] == "1.1.0" and report["target_version"] == "1.0.0"
    assert report["trigger"] == "veto" and report["decided_by"]["actor"] == "sam"
    assert report["outcome"] == "1.0.0 restored to production"
    assert [e["name"] for e in report["evidence"]] == []  # test records carry no evidence
    conflict = json.loads(world.registry.read_rollback(folder, "sovereignty_conflict.json"))
    assert conflict["status"] == "conflict" and conflict["steward"] == "sam"
    drift = json.loads(world.registry.read_rollback(folder, "drift_summary.json"))
    assert drift["status"] == "no monitoring run"


def test_rollback_files_are_rewritten_when_missing(world: World) -> None:
    """A process stopped after appending a veto leaves files that are written again, same bytes."""
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    outcome = world.submit("carol", "veto", "1.0.0", reason="late finding")
    folder = f"{outcome.entry.seq:08d}-1.0.0"
    first = {
        k: world.registry.store.read(k) for k in world.registry.store.list("climate/rollbacks")
    }
    report = json.loads(world.registry.read_rollback(folder, "rollback_report.json"))
    assert report["outcome"].startswith("production left empty")
    for key in first:
        world.registry.store.delete(key)
    assert world.engine.write_missing_rollback_files() == sorted(first)
    assert {k: world.registry.store.read(k) for k in first} == first
    assert world.engine.write_missing_rollback_files() == []


def test_drift_rollback_function(world: World) -> None:
    """An automatic rollback needs an open breach, writes its files and appends a pipeline record."""
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    world.deploy("1.1.0")
    world.approve_all("1.1.0")
    with pytest.raises(LedgerError, match="open breach"):
        rollback_to_last_good_version(world.pipeline, trigger="drift", reason="no run yet")
    world.breach("1.1.0", "drift")
    with pytest.raises(AuthorizationError, match="pipeline key"):
        rollback_to_last_good_version(world.engine, trigger="drift", reason="a reviewer")
    outcome = rollback_to_last_good_version(
        world.pipeline,
        trigger="drift",
        reason="PSI 0.41 > 0.25 on tas",
        drift_summary={"psi": {"tas": 0.41}, "threshold": 0.25},
    )
    assert outcome.rolled_back == "1.1.0" and outcome.target_version == "1.0.0"
    assert outcome.entry.kind == "rollback" and outcome.entry.role == "pipeline"
    drift = json.loads(world.registry.read_rollback(outcome.rollback_id, "drift_summary.json"))
    assert drift["psi"]["tas"] == 0.41
    state = world.engine.state()
    assert state.production == "1.0.0"
    assert state.events[-1].kind == "rollback" and not state.events[-1].derived
    assert verify_ledger(world.ledger.entries(), world.gov.roster, DecisionPolicy()).ok
    with pytest.raises(LedgerError, match="not in production"):
        rollback_to_last_good_version(
            world.pipeline, trigger="drift", reason="again", version="1.1.0"
        )


def test_rollback_of_only_version_empties_production(world: World) -> None:
    """Rolling back the first promoted version leaves production empty."""
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    world.breach("1.0.0", "telemetry")
    outcome = rollback_to_last_good_version(
        world.pipeline, trigger="telemetry", reason="energy per prediction over the limit"
    )
    assert outcome.target_version is None
    assert world.engine.state().production is None
    report = json.loads(world.registry.read_rollback(outcome.rollback_id, "rollback_report.json"))
    assert report["outcome"] == "production left empty: there is no earlier good version to restore"


def test_working_group_signoff_when_required(world: World) -> None:
    """With drift sign-off required at registration, quorum alone does not promote."""
    world.pipeline.policy = DecisionPolicy(require_working_group_drift_signoff=True)
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    state = world.engine.state().versions["1.0.0"]
    assert state.state == "under_review"
    assert any("working-group" in m for m in state.missing)
    outcome = world.submit("wendy", "approve", "1.0.0")
    assert [e.kind for e in outcome.events] == ["promotion"]


def test_rules_are_fixed_at_registration(world: World) -> None:
    """Changing the policy later does not change the rules a registered version is decided under."""
    world.deploy("1.0.0")
    world.submit("alice", "approve", "1.0.0")
    world.submit("sam", "approve", "1.0.0")
    lowered = DecisionPolicy(council_quorum=1)
    for engine in (world.engine, world.pipeline):
        engine.policy = lowered
    assert world.engine.state().production is None
    assert verify_ledger(world.ledger.entries(), world.gov.roster, lowered).state.production is None


def test_status_at_past_time(world: World) -> None:
    """Replay at a past time shows the channel as it was then."""
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    before = world.clock()
    world.clock.advance(hours=1)
    world.deploy("1.1.0")
    world.approve_all("1.1.0")
    assert world.engine.state().production == "1.1.0"
    assert world.engine.state(at=before).production == "1.0.0"
    assert "1.1.0" not in world.engine.state(at=before).versions


def test_pipeline_kinds_cannot_be_submitted(world: World) -> None:
    """A reviewer cannot submit a pipeline record themselves: pipeline kinds are not a person's."""
    world.deploy("1.0.0")
    envelope = world.vote("alice", "gates-attested", "1.0.0", role="council")
    with pytest.raises(AuthorizationError, match="appended by the pipeline"):
        world.engine.submit(envelope)


def test_open_breach_blocks_promotion_until_resolved(world: World) -> None:
    """An open drift breach blocks promotion; a working-group resolve then promotes at once."""
    world.deploy("1.0.0")
    world.breach("1.0.0", "drift")
    world.approve_all("1.0.0")
    state = world.engine.state().versions["1.0.0"]
    assert state.state == "under_review"
    assert any(m.startswith("open drift breach") for m in state.missing)
    with pytest.raises(AuthorizationError, match="may not resolve"):
        world.submit("alice", "resolve", "1.0.0", role="council")
    outcome = world.submit("wendy", "resolve", "1.0.0", reason="shift explained by the season")
    assert [e.kind for e in outcome.events] == ["promotion"]
    with pytest.raises(LedgerError, match="no open breach"):
        world.submit("wendy", "resolve", "1.0.0")


def test_in_bounds_run_closes_a_breach(world: World) -> None:
    """A later in-bounds monitoring run closes the breach and the version is promoted."""
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    world.breach("1.0.0", "drift", "telemetry")
    assert world.engine.state().production == "1.0.0"  # promoted before the breach
    world.deploy("1.1.0")
    world.breach("1.1.0", "drift")
    world.approve_all("1.1.0")
    assert world.engine.state().production == "1.0.0"
    world.breach("1.1.0")  # in bounds
    state = world.engine.state()
    assert state.production == "1.1.0"
    assert state.events[-1].cause == "monitoring"


def test_failing_gate_needs_a_council_quorum_of_waivers(world: World) -> None:
    """A failing gate blocks promotion until two council members waive it; the submitter may not."""
    world.deploy("1.0.0", gates_failed=("impact",))
    world.approve_all("1.0.0")
    missing = world.engine.state().versions["1.0.0"].missing
    assert "gate 'impact' failed and is not waived (0 of 2 council waivers)" in missing
    with pytest.raises(LedgerError, match="did not fail"):
        world.submit("alice", "waive", "1.0.0", gate="accuracy")
    with pytest.raises(AuthorizationError, match="self-waiver"):
        world.submit("dev", "waive", "1.0.0", gate="impact")
    assert world.engine.allowed_actions("alice", "1.0.0") == [
        ("veto", "council"),
        ("waive", "council"),
    ]
    assert world.engine.waivable_gates("alice", "1.0.0") == ["impact"]
    world.submit("alice", "waive", "1.0.0", gate="impact", reason="screen over-conservative")
    with pytest.raises(AuthorizationError, match="already waived"):
        world.submit("alice", "waive", "1.0.0", gate="impact")
    with pytest.raises(AuthorizationError, match="may not waive"):
        world.submit("sam", "waive", "1.0.0", gate="impact")
    outcome = world.submit("bob", "waive", "1.0.0", gate="impact", reason="agreed")
    assert [e.kind for e in outcome.events] == ["promotion"]


def test_decision_time_must_be_current(world: World) -> None:
    """A record signed more than the allowed skew before now is refused."""
    world.deploy("1.0.0")
    envelope = world.vote("alice", "approve", "1.0.0")
    world.clock.advance(seconds=DecisionPolicy().clock_skew_seconds + 1)
    with pytest.raises(AuthorizationError, match="not current"):
        world.engine.submit(envelope)


def test_deploy_and_monitoring_need_the_pipeline_key(world: World) -> None:
    """Registering a version or recording a run without the pipeline key is refused."""
    record = push_version(
        world.registry, "0.9.0", write_version_dir(world.tmp / "x", seed="x"), world.gov["pipeline"]
    )
    with pytest.raises(AuthorizationError, match="pipeline key"):
        world.engine.register(record, gates_json=b"{}")
    assert world.ledger.entries() == []
    world.deploy("1.0.0")
    with pytest.raises(AuthorizationError, match="pipeline key"):
        world.engine.record_monitoring("1.0.0", "a run", [RUN])
