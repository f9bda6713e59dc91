"""What allowed_actions offers is exactly what the engine accepts, for every reviewer and state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.decisions.engine import DecisionEngine, rollback_to_last_good_version
from core.decisions.records import Anchor, EvidenceRef, PromotionRules, VersionFacts
from core.decisions.reviewer import prepare_decision, submit_decision
from core.decisions.roster import ROLES
from core.decisions.rules import REVIEWER_ACTIONS, refusal
from core.decisions.state import Breach, ChannelState, VersionState, Vote
from core.errors import AuthorizationError, KfmError, LedgerError
from core.policy import DecisionPolicy
from core.registry.versions import Registry
from core.signing.keys import KeySigner
from core.testing import (
    TEST_FOOTPRINT,
    FixedClock,
    MemoryLedger,
    MemoryStore,
    make_governance,
    register_test_version,
    write_version_dir,
)

STEWARDS = ("sam", "cora")  # the stewards every version's footprint concerns
REVIEWERS = {
    "alice": ["council"],
    "bob": ["council"],
    "cora": ["council", "steward"],  # one person, two roles: one approval in each
    "dev": ["council"],  # submits the models (but 1.4.0)
    "sam": ["steward"],
    "tess": ["steward"],  # a steward no version concerns
    "wendy": ["working_group"],
    "rex": ["council"],  # revoked
    "old": ["council"],  # key expired
    "pipeline": ["pipeline"],
}
OVERRIDES = {
    "rex": {"revoked": True, "revoked_at": None},
    "old": {"valid_until": datetime(2026, 6, 1, tzinfo=UTC).isoformat()},
}
STATES = {
    "0.8.0": "superseded",
    "0.9.0": "rolled_back",
    "1.0.0": "promoted",
    "1.1.0": "registered",
    "1.2.0": "under_review",
    "1.3.0": "vetoed",
    "1.4.0": "under_review",  # every approval, but an open drift breach
    "1.5.0": "registered",  # gate 'impact' failed
}
RUN = EvidenceRef(name="monitoring/run/drift_summary.json", sha256="b" * 64)


@dataclass
class Channel:
    """A ledger with one version in each state, and the means to copy it."""

    engine: DecisionEngine  # a reviewer's: no pipeline key
    store: MemoryStore
    ledger: MemoryLedger
    clock: FixedClock
    signers: Mapping[str, KeySigner]

    def fork(self) -> DecisionEngine:
        """A fresh engine over copies of the registry and the ledger (the original stays)."""
        store = MemoryStore()
        store.objects = dict(self.store.objects)
        ledger = MemoryLedger(clock=self.clock)
        ledger.rows = list(self.ledger.rows)
        return DecisionEngine(
            ledger=ledger,
            registry=Registry(
                store, pipeline_key=self.engine.registry.pipeline_key, clock=self.clock
            ),
            roster=self.engine.roster,
            policy=self.engine.policy,
            clock=self.clock,
        )


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Channel:
    """0.8.0 superseded, 0.9.0 rolled back, 1.0.0 in production, then one version per state."""
    tmp: Path = tmp_path_factory.mktemp("rules")
    gov = make_governance(REVIEWERS, overrides=OVERRIDES)
    clock = FixedClock()
    store, ledger = MemoryStore(), MemoryLedger(clock=clock)
    common = {
        "ledger": ledger,
        "registry": Registry(store, pipeline_key=gov["pipeline"].public_key, clock=clock),
        "roster": gov.roster,
        "policy": DecisionPolicy(),
        "clock": clock,
    }
    engine = DecisionEngine(**common)  # type: ignore[arg-type]
    pipeline = DecisionEngine(pipeline=gov["pipeline"], **common)  # type: ignore[arg-type]

    def deploy(version: str, submitter: str = "dev", gates_failed: tuple[str, ...] = ()) -> None:
        source = write_version_dir(tmp / version, seed=version)
        register_test_version(
            pipeline,
            source,
            version,
            submitter=submitter,
            concerned_stewards=STEWARDS,
            gates_failed=gates_failed,
        )

    def act(actor: str, kind: str, version: str, role: str) -> list[str]:
        clock.advance(seconds=1)
        outcome = submit_decision(engine, kind, version, gov[actor], role=role, reason="test")
        return [outcome.entry.kind, *(e.kind for e in outcome.events)]

    def promote(version: str) -> None:
        deploy(version)
        for actor, role in (("alice", "council"), ("bob", "council"), ("sam", "steward")):
            act(actor, "approve", version, role)
        assert act("cora", "approve", version, "steward") == ["approve", "promotion"]

    promote("0.8.0")
    promote("0.9.0")
    pipeline.record_monitoring("0.9.0", "PSI 0.4 on tas", [RUN], breaches=["drift"])
    rollback_to_last_good_version(pipeline, trigger="drift", reason="PSI 0.4 on tas")
    promote("1.0.0")
    deploy("1.1.0")
    deploy("1.2.0")
    act("cora", "approve", "1.2.0", "council")
    deploy("1.3.0")
    act("bob", "veto", "1.3.0", "council")
    deploy("1.4.0", submitter="alice")
    pipeline.record_monitoring("1.4.0", "PSI 0.2 on tas", [RUN], breaches=["drift"])
    for actor, role in (("bob", "council"), ("cora", "council"), ("sam", "steward")):
        act(actor, "approve", "1.4.0", role)
    act("cora", "approve", "1.4.0", "steward")
    deploy("1.5.0", gates_failed=("impact",))
    clock.advance(seconds=1)
    state = engine.state()
    assert {v: state.versions[v].state for v in STATES} == STATES
    assert state.production == "1.0.0"
    return Channel(engine, store, ledger, clock, gov.signers)


@pytest.mark.parametrize(
    ("actor", "version", "offered"),
    [
        ("alice", "1.1.0", [("approve", "council"), ("veto", "council")]),
        ("dev", "1.1.0", [("veto", "council")]),  # the submitter may not approve
        (
            "cora",
            "1.1.0",
            [
                ("approve", "council"),
                ("approve", "steward"),
                ("veto", "council"),
                ("veto", "steward"),
            ],
        ),
        ("sam", "1.1.0", [("approve", "steward"), ("veto", "steward")]),
        ("tess", "1.1.0", [("approve", "steward")]),  # not concerned: no veto
        ("wendy", "1.1.0", [("approve", "working_group")]),
        # cora approved 1.2.0 as council: still one approval as steward, and a veto in either role
        ("cora", "1.2.0", [("approve", "steward"), ("veto", "council"), ("veto", "steward")]),
        ("alice", "1.0.0", [("veto", "council"), ("request-rollback", "council")]),
        ("sam", "1.0.0", [("veto", "steward"), ("request-rollback", "steward")]),
        ("tess", "1.0.0", []),  # not concerned: no rollback request either
        ("wendy", "1.0.0", [("request-rollback", "working_group")]),
        ("dev", "1.4.0", [("approve", "council"), ("veto", "council")]),  # breach open
        ("alice", "1.4.0", [("veto", "council")]),  # alice submitted 1.4.0
        ("bob", "1.4.0", [("veto", "council")]),  # bob approved 1.4.0 already
        ("wendy", "1.4.0", [("approve", "working_group"), ("resolve", "working_group")]),
        ("alice", "1.5.0", [("approve", "council"), ("veto", "council"), ("waive", "council")]),
        ("dev", "1.5.0", [("veto", "council")]),  # no self-waiver either
        ("wendy", "1.5.0", [("approve", "working_group")]),
        ("alice", "1.3.0", []),  # vetoed: settled
        ("sam", "0.8.0", []),  # superseded: settled
        ("wendy", "0.9.0", []),  # rolled back: settled
        ("rex", "1.1.0", []),  # revoked key
        ("old", "1.1.0", []),  # expired key
        ("pipeline", "1.1.0", []),  # the pipeline is not a reviewer
        ("mallory", "1.1.0", []),  # not on the roster
    ],
)
def test_offers_follow_the_rules(
    channel: Channel, actor: str, version: str, offered: list[tuple[str, str]]
) -> None:
    """Each reviewer is offered the actions the rules give them in the version's state."""
    assert channel.engine.allowed_actions(actor, version) == offered


def test_offered_is_exactly_what_the_engine_accepts(channel: Channel) -> None:
    """Every offered (action, role) is accepted on a fresh copy; every other is refused, unwritten."""
    accepted = refused = 0
    for version in STATES:
        record = channel.engine.version_record(version)
        anchor = channel.engine.state().anchor
        for actor in REVIEWERS:
            offered = set(channel.engine.allowed_actions(actor, version))
            for kind in (*REVIEWER_ACTIONS, "gates-attested", "monitoring"):
                for role in ROLES:
                    envelope = prepare_decision(
                        kind,
                        record,
                        channel.signers[actor],
                        role=role,
                        reason=f"{actor} {kind} as {role}",
                        policy=channel.engine.policy,
                        time=channel.clock(),
                        anchor=anchor,
                        gate="impact" if kind == "waive" else None,
                    )
                    if (kind, role) in offered:
                        outcome = channel.fork().submit(envelope)
                        assert (outcome.entry.kind, outcome.entry.actor) == (kind, actor)
                        accepted += 1
                        continue
                    rows, objects = len(channel.ledger.rows), dict(channel.store.objects)
                    with pytest.raises(KfmError) as error:
                        channel.engine.submit(envelope)
                    assert error.value.field and error.value.message, error.value
                    assert (len(channel.ledger.rows), channel.store.objects) == (rows, objects)
                    refused += 1
    assert accepted >= 30 and refused > accepted, (accepted, refused)


def _facts(*, forbid_self_approval: bool = True) -> VersionFacts:
    return VersionFacts(
        submitter="dev",
        concerned_stewards=("sam",),
        model_family="downscaling",
        footprint=TEST_FOOTPRINT,
        record_sha256="c" * 64,
        rules=PromotionRules.from_policy(DecisionPolicy(forbid_self_approval=forbid_self_approval)),
    )


def test_refusals_name_the_rule() -> None:
    """Each rule refuses with its own message, field and error type."""
    facts = _facts()
    empty = _state({})
    pending = _state({"1": "under_review"}, approvals=(("alice", "council"),))
    settled = _state({"1": "vetoed"})
    vetoed = _state({"1": "under_review"}, vetoes=(("carol", "council"),))
    failing = _state({"1": "registered"}, gates_failed=("impact",))
    breached = _state({"1": "registered"}, breach_seq=5)
    cases = [
        (
            ("gates-attested", "council", "alice", "1", pending),
            AuthorizationError,
            "appended by the pipeline",
        ),
        (("veto", "working_group", "wendy", "1", pending), AuthorizationError, "may not veto"),
        (("approve", "council", "dev", "1", pending), AuthorizationError, "self-approval"),
        (("veto", "steward", "tess", "1", pending), AuthorizationError, "not concerned"),
        (
            ("request-rollback", "steward", "tess", "1", pending),
            AuthorizationError,
            "not concerned",
        ),
        (("approve", "council", "alice", "1", empty), LedgerError, "no registered record"),
        (("approve", "council", "alice", "1", pending), AuthorizationError, "already approved"),
        (("approve", "council", "bob", "1", settled), LedgerError, "nothing to approve"),
        (("veto", "council", "bob", "1", settled), LedgerError, "nothing to veto"),
        (("veto", "council", "carol", "1", vetoed), AuthorizationError, "already vetoed"),
        (("request-rollback", "council", "bob", "1", pending), LedgerError, "not in production"),
        (("waive", "steward", "sam", "1", failing), AuthorizationError, "may not waive"),
        (("waive", "council", "dev", "1", failing), AuthorizationError, "self-waiver"),
        (("waive", "council", "bob", "1", pending), LedgerError, "did not fail"),
        (("resolve", "council", "bob", "1", breached), AuthorizationError, "may not resolve"),
        (("resolve", "working_group", "wendy", "1", pending), LedgerError, "no open breach"),
    ]
    for (kind, role, actor, version, state), kind_of_error, says in cases:
        gate = "impact" if kind == "waive" and state is failing else None
        error = refusal(kind, role, actor, version, state=state, facts=facts, gate=gate)
        assert isinstance(error, kind_of_error) and says in error.message, (kind, role, error)
        assert error.field
    assert refusal("approve", "council", "bob", "1", state=pending, facts=facts) is None
    assert (
        refusal("waive", "council", "bob", "1", state=failing, facts=facts, gate="impact") is None
    )
    lenient = _facts(forbid_self_approval=False)
    assert refusal("approve", "council", "dev", "1", state=pending, facts=lenient) is None
    seen, unseen = (
        refusal(
            "resolve", "working_group", "wendy", "1", state=breached, facts=facts, anchor=anchor
        )
        for anchor in (Anchor(seq=5, entry_hash="d" * 64), Anchor(seq=4, entry_hash="d" * 64))
    )
    assert seen is None
    assert unseen is not None and "did not see it" in unseen.message


def _state(
    states: dict[str, str],
    approvals: tuple[tuple[str, str], ...] = (),
    vetoes: tuple[tuple[str, str], ...] = (),
    gates_failed: tuple[str, ...] = (),
    breach_seq: int | None = None,
) -> ChannelState:
    def votes(pairs: tuple[tuple[str, str], ...]) -> tuple[Vote, ...]:
        return tuple(Vote(a, r, i, "2026-11-01T12:00:00Z") for i, (a, r) in enumerate(pairs))

    breaches = (
        (Breach("drift", breach_seq, "2026-11-01T12:00:00Z"),) if breach_seq is not None else ()
    )
    return ChannelState(
        production=None,
        staging=None,
        versions={
            v: VersionState(
                version=v,
                state=s,  # type: ignore[arg-type]
                registered_seq=1,
                approvals=votes(approvals),
                vetoes=votes(vetoes),
                gates_failed=gates_failed,
                breaches=breaches,
            )
            for v, s in states.items()
        },
        head_seq=1,
    )
