"""Free text kept in signed records has a size limit, refused with a clear error everywhere."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
import rfc8785
from pydantic import ValidationError
from securesystemslib.dsse import Envelope

from core.decisions.records import (
    IN_TOTO_PAYLOAD_TYPE,
    MAX_REASON_CHARS,
    DecisionRecord,
    ModelSubject,
    envelope_to_dict,
    verify_decision,
)
from core.decisions.reviewer import check_reason
from core.decisions.roster import MAX_NAME_CHARS, RosterEntry
from core.errors import AuthorizationError, VerificationError
from core.testing import make_governance

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
        verify_decision(envelope_to_dict(envelope), gov.roster)
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
