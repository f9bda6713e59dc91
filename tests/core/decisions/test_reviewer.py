"""A reviewer's decision: built with the policy's evidence, signed, submitted now or later."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.decisions.engine import DecisionEngine
from core.decisions.records import read_statement, verify_decision
from core.decisions.reviewer import prepare_decision, submit_decision
from core.errors import AuthorizationError, LedgerError
from core.policy import DecisionPolicy
from core.registry.versions import Registry, VersionRecord
from core.testing import (
    FixedClock,
    Governance,
    MemoryLedger,
    MemoryStore,
    default_reviewers,
    make_governance,
    push_version,
    write_version_dir,
)


class ClosingLedger(MemoryLedger):
    """A memory ledger that remembers being closed."""

    closed = False

    def close(self) -> None:
        self.closed = True


@dataclass
class Setup:
    gov: Governance
    engine: DecisionEngine
    ledger: ClosingLedger
    record: VersionRecord
    source: Path


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """Version 1.0.0 (with a sovereignty report) pushed and registered, submitted by dev."""
    gov = make_governance(default_reviewers())
    clock = FixedClock()
    ledger = ClosingLedger(clock=clock)
    engine = DecisionEngine(
        ledger=ledger,
        registry=Registry(MemoryStore(), pipeline_key=gov["pipeline"].public_key, clock=clock),
        roster=gov.roster,
        policy=DecisionPolicy(),
        pipeline=gov["pipeline"],
        clock=clock,
    )
    source = write_version_dir(tmp_path / "v")
    (source / "sovereignty").mkdir()
    (source / "sovereignty" / "report.json").write_text('{"conflicts": []}\n', encoding="utf-8")
    record = push_version(
        engine.registry, "1.0.0", source, gov["pipeline"], concerned_stewards=["sam"]
    )
    engine.register(record, gates_json=(source / "gates.json").read_bytes())
    clock.advance(seconds=30)
    engine.pipeline = None  # from here on, reviewers only: nobody holds the pipeline key
    return Setup(gov, engine, ledger, record, source)


def test_prepared_decision_records_the_policy_evidence(setup: Setup) -> None:
    """The envelope verifies, names the actor, the channel and each evidence file's SHA-256."""
    before = setup.ledger.entries()
    envelope = prepare_decision(
        "approve",
        setup.record,
        setup.gov["alice"],
        role="council",
        reason="  gates pass  ",
        policy=setup.engine.policy,
        time=setup.engine.now().replace(microsecond=123456),
        anchor=setup.engine.state().anchor,
    )
    record = verify_decision(
        envelope, setup.gov.roster, at=setup.engine.now(), expected_subject=setup.record.subject
    )
    assert (record.kind, record.actor, record.role, record.version) == (
        "approve",
        "alice",
        "council",
        "1.0.0",
    )
    assert (record.channel, record.reason, record.time.microsecond) == (
        "production",
        "gates pass",
        0,
    )
    expected = {
        name: hashlib.sha256((setup.source / name).read_bytes()).hexdigest()
        for name in DecisionPolicy().evidence
    }
    assert {e.name: e.sha256 for e in record.evidence} == expected
    assert record.anchor.seq == 2 and record.anchor.entry_hash == before[-1].entry_hash
    assert setup.ledger.entries() == before  # prepared, not submitted


def test_evidence_follows_the_policy(setup: Setup) -> None:
    """Only the files the policy names are recorded; ones the version lacks are left out."""
    policy = DecisionPolicy(evidence=("gates.json", "xai/summary.json", "data/missing.nc"))
    envelope = prepare_decision(
        "veto",
        setup.record,
        setup.gov["alice"],
        role="council",
        reason="bias in the tails",
        policy=policy,
        time=setup.engine.now(),
        anchor=setup.engine.state().anchor,
    )
    assert [e.name for e in read_statement(envelope).evidence] == ["gates.json", "xai/summary.json"]
    with pytest.raises(AuthorizationError, match="none of the files") as refused:
        prepare_decision(
            "veto",
            setup.record,
            setup.gov["alice"],
            role="council",
            reason="bias in the tails",
            policy=DecisionPolicy(evidence=("data/missing.nc",)),
            time=setup.engine.now(),
            anchor=setup.engine.state().anchor,
        )
    assert refused.value.field == "decisions.evidence"


def test_blank_reason_is_refused_and_nothing_is_written(setup: Setup) -> None:
    """A decision without a reason is refused before it is signed or appended."""
    before = setup.ledger.entries()
    with pytest.raises(AuthorizationError, match="needs a reason"):
        submit_decision(
            setup.engine, "approve", "1.0.0", setup.gov["alice"], role="council", reason=" "
        )
    assert setup.ledger.entries() == before


def test_an_envelope_prepared_earlier_is_submitted_from_its_json(setup: Setup) -> None:
    """A prepared envelope written as JSON and read back is accepted by the engine later."""
    envelope = prepare_decision(
        "approve",
        setup.record,
        setup.gov["alice"],
        role="council",
        reason="reviewed offline",
        policy=setup.engine.policy,
        time=setup.engine.now(),
        anchor=setup.engine.state().anchor,
    )
    outcome = setup.engine.submit(json.loads(json.dumps(envelope)))
    assert (outcome.entry.kind, outcome.entry.actor, outcome.events) == ("approve", "alice", ())
    assert setup.engine.state().versions["1.0.0"].approvers("council") == ["alice"]


def test_submit_decision_promotes_when_the_rules_are_met(setup: Setup) -> None:
    """The last approval needed appends only the approval; the promotion is derived, no key."""
    for actor, role in (("alice", "council"), ("bob", "council")):
        submit_decision(setup.engine, "approve", "1.0.0", setup.gov[actor], role=role, reason="ok")
    outcome = submit_decision(
        setup.engine, "approve", "1.0.0", setup.gov["sam"], role="steward", reason="ok"
    )
    assert outcome.entry.kind == "approve" and setup.engine.pipeline is None
    assert [(e.kind, e.version) for e in outcome.events] == [("promotion", "1.0.0")]
    assert (
        outcome.lines()[-1] == "→ 1.0.0 promoted to production (rules met: approved by "
        "alice (council), bob (council), sam (steward))"
    )
    assert [e.kind for e in setup.ledger.entries()][-1] == "approve"


def test_a_record_anchored_on_another_chain_is_refused(setup: Setup) -> None:
    """An envelope built against a head this ledger does not hold is refused, nothing written."""
    from core.decisions.records import Anchor

    before = setup.ledger.entries()
    envelope = prepare_decision(
        "approve",
        setup.record,
        setup.gov["alice"],
        role="council",
        reason="seen elsewhere",
        policy=setup.engine.policy,
        time=setup.engine.now(),
        anchor=Anchor(seq=2, entry_hash="f" * 64),
    )
    with pytest.raises(LedgerError, match="not in this ledger"):
        setup.engine.submit(envelope)
    assert setup.ledger.entries() == before


def test_engine_closes_its_ledger_when_the_block_ends(setup: Setup) -> None:
    """`with engine:` closes the ledger on the way out, also when the block raises."""
    with setup.engine as engine:
        assert engine.state().versions["1.0.0"].state == "registered"
    assert setup.ledger.closed
    setup.ledger.closed = False
    with pytest.raises(AuthorizationError), setup.engine as engine:
        submit_decision(engine, "approve", "1.0.0", setup.gov["dev"], role="council", reason="mine")
    assert setup.ledger.closed
