"""The verified replay: channel state from verified entries only, extended incrementally."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

import core.decisions.verify as verify_module
from core.decisions.engine import DecisionEngine
from core.decisions.reviewer import submit_decision
from core.decisions.verify import BrokenEntryError, VerifiedLedger, verify_ledger
from core.policy import DecisionPolicy
from core.registry.versions import Registry
from core.testing import (
    FixedClock,
    Governance,
    MemoryLedger,
    MemoryStore,
    default_reviewers,
    make_governance,
    register_test_version,
    write_version_dir,
)

POLICY = DecisionPolicy()


@dataclass
class Setup:
    gov: Governance
    ledger: MemoryLedger
    pipeline: DecisionEngine
    reviewers: DecisionEngine
    clock: FixedClock
    tmp: Path

    def deploy(self, version: str) -> None:
        source = write_version_dir(self.tmp / version, seed=version)
        register_test_version(self.pipeline, source, version)

    def act(self, actor: str, kind: str, version: str) -> None:
        self.clock.advance(minutes=1)
        role = self.gov.roster.entry(actor).roles[0]  # type: ignore[union-attr]
        submit_decision(self.reviewers, kind, version, self.gov[actor], role=role, reason="ok")


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    gov = make_governance(default_reviewers())
    clock = FixedClock()
    ledger = MemoryLedger(clock=clock)
    common = {
        "ledger": ledger,
        "registry": Registry(MemoryStore(), pipeline_key=gov["pipeline"].public_key, clock=clock),
        "roster": gov.roster,
        "policy": POLICY,
        "clock": clock,
    }
    pipeline = DecisionEngine(pipeline=gov["pipeline"], **common)  # type: ignore[arg-type]
    reviewers = DecisionEngine(**common)  # type: ignore[arg-type]
    return Setup(gov, ledger, pipeline, reviewers, clock, tmp_path)


def test_states_progress_and_missing_rules_are_named(setup: Setup) -> None:
    """registered → under review → promoted (derived); missing rules are listed until met."""
    setup.deploy("1.0.0")
    state = setup.reviewers.state()
    assert state.versions["1.0.0"].state == "registered" and state.staging == "1.0.0"
    setup.act("alice", "approve", "1.0.0")
    missing = setup.reviewers.state().versions["1.0.0"].missing
    assert setup.reviewers.state().versions["1.0.0"].state == "under_review"
    assert "1 more council approval(s) (have 1 of 2)" in missing
    assert "approval by concerned steward 'sam'" in missing
    setup.act("bob", "approve", "1.0.0")
    setup.act("sam", "approve", "1.0.0")
    state = setup.reviewers.state()
    assert state.versions["1.0.0"].state == "promoted" and state.versions["1.0.0"].missing == ()
    assert state.production == "1.0.0" and state.staging is None
    assert [(e.kind, e.seq, e.cause) for e in state.events] == [("promotion", 5, "approve")]
    assert (state.head_seq, state.head_hash) == (5, setup.ledger.entries()[-1].entry_hash)
    assert state.max_roster_serial == setup.gov.roster.serial  # pipeline records sign it
    assert state.facts["1.0.0"].submitter == "dev" and state.facts["1.0.0"].concerned_stewards == (
        "sam",
    )


def test_at_cuts_the_replay(setup: Setup) -> None:
    """Replaying verified entries up to a time shows the channel as it was then."""
    setup.deploy("1.0.0")
    for actor in ("alice", "bob"):
        setup.act(actor, "approve", "1.0.0")
    before = setup.clock()
    setup.act("sam", "approve", "1.0.0")
    assert setup.reviewers.state(at=before).production is None
    assert setup.reviewers.state(at=before + timedelta(minutes=1)).production == "1.0.0"
    assert setup.reviewers.state(at=before).head_seq == 4


def test_only_new_entries_are_verified(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first read, a reader verifies only the entries after the head it verified."""
    setup.deploy("1.0.0")
    setup.act("alice", "approve", "1.0.0")
    verified = VerifiedLedger(setup.gov.roster, POLICY)
    assert verified.refresh(setup.ledger).head_seq == 3
    calls: list[int] = []
    real = verify_module.verify_decision

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(verify_module, "verify_decision", counting)
    assert verified.refresh(setup.ledger).head_seq == 3
    assert calls == []
    setup.act("bob", "approve", "1.0.0")
    setup.act("sam", "approve", "1.0.0")
    calls.clear()  # the reviewers' own engine verified them too
    state = verified.refresh(setup.ledger)
    assert len(calls) == 2 and state.production == "1.0.0" and verified.fork is None


def test_incremental_state_equals_a_full_verification(setup: Setup) -> None:
    """Extending a verified state entry by entry gives the state a verification from scratch gives."""
    verified = VerifiedLedger(setup.gov.roster, POLICY)
    setup.deploy("1.0.0")
    verified.update(setup.ledger.entries())
    for actor in ("alice", "bob", "sam"):
        setup.act(actor, "approve", "1.0.0")
        verified.update(setup.ledger.entries())
    setup.deploy("2.0.0")
    setup.act("carol", "veto", "2.0.0")
    incremental = verified.update(setup.ledger.entries())
    full = verify_ledger(setup.ledger.entries(), setup.gov.roster, POLICY).state
    assert incremental == full
    assert incremental.to_dict() == full.to_dict()


def test_a_fork_is_reported_and_verified_again(setup: Setup) -> None:
    """A reader whose verified head is gone (ledger truncated) verifies again and says so."""
    setup.deploy("1.0.0")
    for actor in ("alice", "bob", "sam"):
        setup.act(actor, "approve", "1.0.0")
    verified = VerifiedLedger(setup.gov.roster, POLICY)
    assert verified.refresh(setup.ledger).production == "1.0.0"
    del setup.ledger.rows[-1]  # the last approval erased by someone who can write the rows
    state = verified.refresh(setup.ledger)
    assert state.production is None and state.head_seq == 4
    assert verified.fork is not None and "no longer holds entry #5" in verified.fork


def test_a_broken_entry_stops_every_reader(setup: Setup) -> None:
    """A broken entry raises an error naming it, for a new reader and for the engine."""
    setup.deploy("1.0.0")
    setup.act("alice", "approve", "1.0.0")
    verified = VerifiedLedger(setup.gov.roster, POLICY)
    good = verified.refresh(setup.ledger)
    row = setup.ledger.rows[-1]
    setup.ledger.rows[-1] = row.__class__(**{**row.__dict__, "actor": "bob"})
    with pytest.raises(BrokenEntryError, match="ledger entry #3 is broken") as caught:
        VerifiedLedger(setup.gov.roster, POLICY).refresh(setup.ledger)
    assert caught.value.seq == 3 and caught.value.field == "actor"
    fresh = DecisionEngine(
        ledger=setup.ledger,
        registry=setup.reviewers.registry,
        roster=setup.gov.roster,
        policy=POLICY,
    )
    with pytest.raises(BrokenEntryError):
        fresh.state()
    # A reader that verified the row before keeps what was signed, never the edited column.
    assert verified.refresh(setup.ledger) == good
    assert [e.actor for e in verified.entries] == ["pipeline", "pipeline", "alice"]
