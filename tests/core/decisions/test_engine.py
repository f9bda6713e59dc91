"""Promotions and rollbacks driven by signed decision records."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import rfc8785

from core.decisions.engine import DecisionEngine, rollback_to_last_good_version
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
    signed_decision,
    write_version_dir,
)


@dataclass
class World:
    gov: Governance
    registry: Registry
    ledger: MemoryLedger
    engine: DecisionEngine
    clock: FixedClock
    tmp: Path

    def deploy(
        self, version: str, *, submitter: str = "dev", stewards: Sequence[str] = ("sam",)
    ) -> None:
        source = write_version_dir(self.tmp / version, seed=version)
        record = push_version(
            self.registry,
            version,
            source,
            self.gov["pipeline"],
            submitter=submitter,
            concerned_stewards=stewards,
        )
        self.engine.register(record, gates_json=(source / "gates.json").read_bytes())

    def vote(
        self,
        actor: str,
        kind: str,
        version: str,
        *,
        role: str | None = None,
        reason: str = "looked at gates and lineage",
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
            reason=reason,
        )

    def submit(self, actor: str, kind: str, version: str, **kw: str) -> list:
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
    engine = DecisionEngine(
        ledger=ledger,
        registry=registry,
        roster=gov.roster,
        policy=DecisionPolicy(),
        pipeline=gov["pipeline"],
        clock=clock,
    )
    return World(gov, registry, ledger, engine, clock, tmp_path)


def test_quorum_and_steward_promote_at_once(world: World) -> None:
    """Two council approvals plus the concerned steward append a pipeline promotion at once."""
    world.deploy("1.0.0")
    world.submit("alice", "approve", "1.0.0")
    assert world.engine.state().versions["1.0.0"].state == "under_review"
    world.submit("bob", "approve", "1.0.0")
    assert world.engine.state().production is None  # steward sam has not approved yet
    appended = world.submit("sam", "approve", "1.0.0")
    assert [e.kind for e in appended] == ["approve", "promote"]
    assert appended[1].actor == "pipeline"
    state = world.engine.state()
    assert state.production == "1.0.0" and state.versions["1.0.0"].state == "promoted"
    assert verify_ledger(world.ledger.entries(), world.gov.roster).ok


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
    with pytest.raises(AuthorizationError, match="replayed record"):
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


def test_unconcerned_steward_veto_is_refused(world: World) -> None:
    """A steward whose region the footprint does not touch cannot veto."""
    world.deploy("1.0.0", stewards=("sam",))
    with pytest.raises(AuthorizationError, match="not concerned"):
        world.submit("tess", "veto", "1.0.0")


def test_veto_of_production_rolls_back_to_last_good(world: World) -> None:
    """A concerned steward's veto of the production version rolls back with a report."""
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    world.deploy("1.1.0")
    world.approve_all("1.1.0")
    state = world.engine.state()
    assert state.production == "1.1.0" and state.versions["1.0.0"].state == "superseded"
    appended = world.submit("sam", "veto", "1.1.0", reason="outputs reveal a sacred site")
    assert [e.kind for e in appended] == ["veto", "rollback"]
    assert appended[1].target_version == "1.0.0"
    state = world.engine.state()
    assert state.production == "1.0.0"
    assert state.versions["1.1.0"].state == "rolled_back"
    keys = world.registry.store.list("climate/rollbacks")
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == [
        "drift_summary.json",
        "rollback_report.json",
        "sovereignty_conflict.json",
    ]
    report = json.loads(world.registry.store.read(next(k for k in keys if "report" in k)))
    assert report["rolled_back"] == "1.1.0" and report["target_version"] == "1.0.0"


def test_drift_rollback_function(world: World) -> None:
    """rollback_to_last_good_version writes the drift summary and appends a signed rollback."""
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    world.deploy("1.1.0")
    world.approve_all("1.1.0")
    outcome = rollback_to_last_good_version(
        world.engine,
        trigger="drift",
        reason="PSI 0.41 > 0.25 on tas",
        drift_summary={"psi": {"tas": 0.41}, "threshold": 0.25},
    )
    assert outcome.rolled_back == "1.1.0" and outcome.target_version == "1.0.0"
    drift = json.loads(world.registry.read_rollback(outcome.rollback_id, "drift_summary.json"))
    assert drift["psi"]["tas"] == 0.41
    assert world.engine.state().production == "1.0.0"
    assert verify_ledger(world.ledger.entries(), world.gov.roster).ok
    with pytest.raises(LedgerError, match="not in production"):
        rollback_to_last_good_version(
            world.engine, trigger="drift", reason="again", version="1.1.0"
        )


def test_rollback_of_only_version_empties_production(world: World) -> None:
    """Rolling back the first promoted version leaves production empty."""
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    outcome = rollback_to_last_good_version(
        world.engine, trigger="telemetry", reason="missing energy telemetry"
    )
    assert outcome.target_version is None
    assert world.engine.state().production is None


def test_working_group_signoff_when_required(world: World) -> None:
    """With drift sign-off required, quorum alone does not promote."""
    world.engine.policy = DecisionPolicy(require_working_group_drift_signoff=True)
    world.deploy("1.0.0")
    world.approve_all("1.0.0")
    state = world.engine.state().versions["1.0.0"]
    assert state.state == "under_review"
    assert any("working-group" in m for m in state.missing)
    appended = world.submit("wendy", "approve", "1.0.0")
    assert [e.kind for e in appended] == ["approve", "promote"]


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
    """A reviewer cannot submit a promotion themselves."""
    world.deploy("1.0.0")
    with pytest.raises(AuthorizationError):
        world.submit("alice", "promote", "1.0.0", role="council")
