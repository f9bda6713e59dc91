"""Free text kept in signed records has a size limit, refused with a clear error everywhere."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rfc8785
from pydantic import ValidationError
from securesystemslib.dsse import Envelope

from core.decisions.engine import DecisionEngine
from core.decisions.records import (
    GENESIS,
    IN_TOTO_PAYLOAD_TYPE,
    MAX_REASON_CHARS,
    Anchor,
    DecisionRecord,
    ModelSubject,
    envelope_to_dict,
    read_statement,
    verify_decision,
)
from core.decisions.reviewer import check_reason, submit_decision
from core.decisions.roster import MAX_NAME_CHARS, RosterEntry
from core.errors import AuthorizationError, VerificationError
from core.policy import DecisionPolicy
from core.registry.versions import Registry
from core.testing import (
    FixedClock,
    MemoryLedger,
    MemoryStore,
    default_reviewers,
    make_governance,
    push_version,
    write_version_dir,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SUBJECT = ModelSubject(
    name="downscaler",
    root_digest=hashlib.sha256(b"r").hexdigest(),
    manifest_digest=hashlib.sha256(b"m").hexdigest(),
)


def _record(reason: str) -> dict[str, object]:
    return {
        "kind": "approve",
        "actor": "alice",
        "role": "council",
        "reason": reason,
        "time": T0,
        "subject": SUBJECT,
        "version": "1.0.0",
        "anchor": Anchor(seq=0, entry_hash=GENESIS),
        "channel": "production",
    }


def test_reason_of_the_limit_is_kept_and_one_more_character_refused() -> None:
    """A record holds a reason of exactly the limit; one character more is a validation error."""
    assert MAX_REASON_CHARS == 4000
    assert len(DecisionRecord(**_record("r" * MAX_REASON_CHARS)).reason) == MAX_REASON_CHARS  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="at most 4000 characters"):
        DecisionRecord(**_record("r" * (MAX_REASON_CHARS + 1)))  # type: ignore[arg-type]


def test_check_reason_refuses_a_20_mb_reason_naming_the_field() -> None:
    """A 20 MB --reason is refused before anything is signed, naming the option and the size."""
    with pytest.raises(AuthorizationError, match="reason is too long") as caught:
        check_reason("x" * 20_000_000, field="--reason")
    assert caught.value.field == "--reason"
    assert caught.value.expected == "at most 4000 characters"
    assert caught.value.found == "20000000 characters"
    assert check_reason("  fine  ") == "fine"


def test_signed_record_with_an_oversized_reason_does_not_verify() -> None:
    """A validly signed envelope whose reason is over the limit is refused at verification."""
    gov = make_governance({"alice": ["council"]})
    statement = DecisionRecord(**_record("ok")).to_statement()  # type: ignore[arg-type]
    statement["predicate"]["reason"] = "y" * (MAX_REASON_CHARS + 1)
    envelope = Envelope(rfc8785.dumps(statement), IN_TOTO_PAYLOAD_TYPE, {})
    envelope.sign(gov["alice"].dsse_signer())
    with pytest.raises(VerificationError, match="predicate.reason") as caught:
        verify_decision(envelope_to_dict(envelope), gov.roster, at=T0)
    assert "4000" in str(caught.value)
    payload = json.loads(base64.b64decode(envelope_to_dict(envelope)["payload"]))
    assert len(payload["predicate"]["reason"]) == MAX_REASON_CHARS + 1


def test_roster_name_has_a_limit() -> None:
    """A roster display name longer than the limit is refused."""
    gov = make_governance({"alice": ["council"]})
    entry = gov.roster_data["reviewers"][0]
    assert RosterEntry.model_validate({**entry, "name": "n" * MAX_NAME_CHARS}).name
    with pytest.raises(ValidationError, match=f"at most {MAX_NAME_CHARS} characters"):
        RosterEntry.model_validate({**entry, "name": "n" * (MAX_NAME_CHARS + 1)})


def test_veto_of_production_with_a_reason_at_the_limit_rolls_back(tmp_path: Path) -> None:
    """A veto whose reason is at the limit still rolls production back: the veto keeps it whole,
    and the derived rollback's report quotes it."""
    gov = make_governance(default_reviewers())
    clock = FixedClock()
    engine = DecisionEngine(
        ledger=MemoryLedger(clock=clock),
        registry=Registry(MemoryStore(), pipeline_key=gov["pipeline"].public_key, clock=clock),
        roster=gov.roster,
        policy=DecisionPolicy(),
        pipeline=gov["pipeline"],
        clock=clock,
    )
    source = write_version_dir(tmp_path / "v")
    record = push_version(
        engine.registry, "1.0.0", source, gov["pipeline"], concerned_stewards=["sam"]
    )
    engine.register(record, gates_json=b"{}")
    for actor, role in (("alice", "council"), ("bob", "council"), ("sam", "steward")):
        clock.advance(seconds=1)
        submit_decision(engine, "approve", "1.0.0", gov[actor], role=role, reason="ok")
    assert engine.state().production == "1.0.0"
    clock.advance(seconds=1)
    long_reason = "v" * MAX_REASON_CHARS
    outcome = submit_decision(
        engine, "veto", "1.0.0", gov["sam"], role="steward", reason=long_reason
    )
    assert outcome.entry.kind == "veto" and [e.kind for e in outcome.events] == ["rollback"]
    assert read_statement(outcome.entry.envelope_dict()).reason == long_reason
    assert [e.kind for e in engine.ledger.entries()][-1] == "veto"  # the rollback is derived
    report_key = next(k for k in outcome.rollback_keys if k.endswith("rollback_report.json"))
    report = json.loads(engine.registry.store.read(report_key))
    assert report["decided_by"]["reason"] == long_reason
    assert engine.state().production is None
