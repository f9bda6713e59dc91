"""Replay: channel state is a pure function of ledger rows, facts and policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.decisions.ledger import LedgerEntry, format_time
from core.decisions.replay import replay
from core.decisions.state import VersionFacts
from core.policy import DecisionPolicy

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def rows(*spec: tuple[str, str, str, str] | tuple[str, str, str, str, str]) -> list[LedgerEntry]:
    """Rows from (kind, version, actor, role[, target]) in order, one minute apart."""
    out = []
    for i, item in enumerate(spec, start=1):
        kind, version, actor, role = item[:4]
        when = format_time(T0 + timedelta(minutes=i))
        out.append(
            LedgerEntry(
                seq=i,
                prev_hash="",
                entry_hash="",
                recorded_at=when,
                envelope="{}",
                kind=kind,
                actor=actor,
                role=role,
                version=version,
                time=when,
                target_version=item[4] if len(item) > 4 else None,
            )
        )
    return out


FACTS = {v: VersionFacts(submitter="dev", concerned_stewards=("sam",)) for v in ("1", "2")}
REG = [("gates-attested", "1", "pipeline", "pipeline"), ("registered", "1", "pipeline", "pipeline")]


def test_states_progress_and_missing_rules_are_named() -> None:
    """registered → under review → approved; missing rules are listed until met."""
    state = replay(rows(*REG), FACTS, DecisionPolicy())
    assert state.versions["1"].state == "registered" and state.staging == "1"
    state = replay(rows(*REG, ("approve", "1", "alice", "council")), FACTS, DecisionPolicy())
    assert state.versions["1"].state == "under_review"
    assert any("1 more council" in m for m in state.versions["1"].missing)
    assert any("'sam'" in m for m in state.versions["1"].missing)
    state = replay(
        rows(
            *REG,
            ("approve", "1", "alice", "council"),
            ("approve", "1", "bob", "council"),
            ("approve", "1", "sam", "steward"),
        ),
        FACTS,
        DecisionPolicy(),
    )
    assert state.versions["1"].state == "approved" and state.versions["1"].missing == ()


def test_self_approval_and_duplicates_do_not_count() -> None:
    """The submitter's approval and a repeated approval never reach quorum."""
    state = replay(
        rows(
            *REG,
            ("approve", "1", "dev", "council"),
            ("approve", "1", "alice", "council"),
            ("approve", "1", "alice", "council"),
            ("approve", "1", "sam", "steward"),
        ),
        FACTS,
        DecisionPolicy(),
    )
    assert state.versions["1"].state == "under_review"


def test_gates_attestation_is_required() -> None:
    """Without a gates-attested record a version is never approved."""
    state = replay(
        rows(
            ("registered", "1", "pipeline", "pipeline"),
            ("approve", "1", "alice", "council"),
            ("approve", "1", "bob", "council"),
            ("approve", "1", "sam", "steward"),
        ),
        FACTS,
        DecisionPolicy(),
    )
    assert "a gates-attested record from the pipeline" in state.versions["1"].missing


def test_promotion_supersedes_and_rollback_restores() -> None:
    """Promoting 2 supersedes 1; rolling back 2 returns production to 1."""
    spec = [
        *REG,
        ("promote", "1", "pipeline", "pipeline"),
        ("gates-attested", "2", "pipeline", "pipeline"),
        ("registered", "2", "pipeline", "pipeline"),
        ("promote", "2", "pipeline", "pipeline"),
    ]
    state = replay(rows(*spec), FACTS, DecisionPolicy())
    assert state.production == "2" and state.versions["1"].state == "superseded"
    assert state.last_good_version(excluding="2") == "1"
    state = replay(
        rows(*spec, ("rollback", "2", "pipeline", "pipeline", "1")), FACTS, DecisionPolicy()
    )
    assert state.production == "1"
    assert state.versions["2"].state == "rolled_back"
    assert state.versions["1"].state == "promoted"


def test_rows_from_wrong_roles_change_nothing() -> None:
    """A promotion row signed by a council role, or a veto by an unconcerned steward, is ignored."""
    state = replay(
        rows(*REG, ("promote", "1", "alice", "council"), ("veto", "1", "tess", "steward")),
        FACTS,
        DecisionPolicy(),
    )
    assert state.production is None and state.versions["1"].state == "registered"


def test_at_cuts_the_replay() -> None:
    """Replaying up to a time ignores later rows."""
    spec = rows(*REG, ("promote", "1", "pipeline", "pipeline"))
    assert replay(spec, FACTS, DecisionPolicy(), at=T0 + timedelta(minutes=2)).production is None
    assert replay(spec, FACTS, DecisionPolicy(), at=T0 + timedelta(minutes=3)).production == "1"
