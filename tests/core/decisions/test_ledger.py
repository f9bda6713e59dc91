"""Ledger: hash chain, tamper detection, authorization matrix — on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rfc8785

from core.decisions.ledger import GENESIS, Ledger, PostgresLedger, SQLiteLedger, open_ledger
from core.decisions.records import Anchor, PromotionRules, VersionFacts
from core.decisions.verify import verify_ledger
from core.errors import AuthorizationError, LedgerError, VerificationError
from core.policy import DecisionPolicy
from core.signing.digests import ModelSubject
from core.testing import (
    TEST_FOOTPRINT,
    FixedClock,
    MemoryLedger,
    make_governance,
    new_signer,
    signed_decision,
)

PG_URL = os.environ.get("KFM_TEST_POSTGRES_URL")
SUBJECT = ModelSubject(name="downscaler", root_digest="a" * 64, manifest_digest="b" * 64)
OTHER = ModelSubject(name="downscaler", root_digest="c" * 64, manifest_digest="d" * 64)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """The same suite on every backend; PostgreSQL gets its own schema, dropped afterwards."""
    clock = FixedClock(T0)
    if request.param == "sqlite":
        ledger: Ledger = SQLiteLedger(tmp_path / "ledger.sqlite", clock=clock)
    elif request.param == "memory":
        ledger = MemoryLedger(clock=clock)
    else:
        if not PG_URL:
            pytest.skip("KFM_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
        ledger = PostgresLedger(PG_URL, schema=f"kfm_test_{uuid.uuid4().hex[:10]}", clock=clock)
    register(ledger)
    yield ledger
    if isinstance(ledger, PostgresLedger):
        ledger.drop()
    ledger.close()


GOV = make_governance(
    {
        "alice": ["council"],
        "bob": ["council"],
        "old": ["council"],
        "gone": ["council"],
        "pipeline": ["pipeline"],
    },
    overrides={
        "old": {"valid_until": "2026-06-01T00:00:00+00:00"},
        "gone": {"revoked": True, "revoked_at": "2026-10-01T00:00:00+00:00"},
    },
)


POLICY = DecisionPolicy()
FACTS = VersionFacts(
    submitter="dev",
    concerned_stewards=(),
    model_family="downscaling",
    footprint=TEST_FOOTPRINT,
    record_sha256="e" * 64,
    rules=PromotionRules.from_policy(POLICY),
)
REGISTERED = 2  # every ledger starts with 1.0.0 registered and its gates attested


def head(ledger: Ledger | None) -> Anchor:
    """The anchor of ``ledger``'s head (what a signer looking at it now saw)."""
    entries = ledger.entries() if ledger is not None else []
    if not entries:
        return Anchor(seq=0, entry_hash=GENESIS)
    return Anchor(seq=entries[-1].seq, entry_hash=entries[-1].entry_hash)


def register(ledger: Ledger) -> None:
    """1.0.0 registered with its facts and attested, as the pipeline does at deploy."""
    for kind, fields in (("registered", {"facts": FACTS}), ("gates-attested", {})):
        ledger.append(
            signed_decision(
                GOV["pipeline"],
                kind=kind,
                role="pipeline",
                version="1.0.0",
                subject=SUBJECT,
                time=T0,
                anchor=Anchor(seq=0, entry_hash=GENESIS),
                **fields,
            )
        )


def vote(
    actor: str,
    ledger: Ledger | None = None,
    *,
    kind: str = "approve",
    role: str = "council",
    version: str = "1.0.0",
    subject: ModelSubject = SUBJECT,
    time: datetime = T0,
) -> dict:
    return signed_decision(
        GOV[actor],
        kind=kind,
        role=role,
        version=version,
        subject=subject,
        time=time,
        anchor=head(ledger),
    )


def verify(ledger: Ledger):  # type: ignore[no-untyped-def]
    return verify_ledger(ledger.entries(), GOV.roster, POLICY)


def tamper(ledger: Ledger, sql: str, *params: object) -> None:
    if isinstance(ledger, MemoryLedger):
        pytest.skip("raw row edits need a SQL backend")
    assert isinstance(ledger, SQLiteLedger | PostgresLedger)
    table = "ledger" if isinstance(ledger, SQLiteLedger) else "{table}"
    marks = sql.replace("?", "%s") if isinstance(ledger, PostgresLedger) else sql
    ledger.execute_unchecked(marks.replace("TABLE", table), params)


def test_append_chains_and_reads_back(ledger: Ledger) -> None:
    """Each entry links to its predecessor; rows read back with the record's fields."""
    first = ledger.append(vote("alice", ledger))
    second = ledger.append(vote("bob", ledger))
    assert ledger.entries()[0].seq == 1 and ledger.entries()[0].prev_hash == GENESIS
    assert first.seq == 3 and first.prev_hash == ledger.entries()[1].entry_hash
    assert second.seq == 4 and second.prev_hash == first.entry_hash
    entries = ledger.entries()
    assert entries[REGISTERED:] == [first, second]
    assert ledger.read_from(4) == [second]
    assert (entries[3].actor, entries[3].kind, entries[3].role) == ("bob", "approve", "council")
    assert entries[2].envelope_dict() == json.loads(first.envelope)
    assert verify(ledger).ok


def test_rows_keep_the_encoding_of_earlier_releases(ledger: Ledger) -> None:
    """Stored envelopes are RFC 8785 text and chain hashes equal the compact json.dumps of old."""
    ledger.append(vote("alice", ledger))
    ledger.append(vote("bob", ledger, kind="veto"))
    for entry in ledger.entries():
        assert entry.envelope.encode("utf-8") == rfc8785.dumps(json.loads(entry.envelope))
        digest = hashlib.sha256(entry.envelope.encode("utf-8")).hexdigest()
        body = [entry.seq, entry.prev_hash, entry.recorded_at, digest]
        legacy = hashlib.sha256(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        assert entry.entry_hash == legacy.hexdigest()


def test_transact_appends_nothing_when_decide_raises(ledger: Ledger) -> None:
    """A refused decision leaves the ledger unchanged."""
    ledger.append(vote("alice", ledger))

    def refuse(_entries: object) -> list:
        raise LedgerError("refused")

    with pytest.raises(LedgerError):
        ledger.transact(refuse)
    assert len(ledger.entries()) == REGISTERED + 1


def test_non_decision_is_refused(ledger: Ledger) -> None:
    """An envelope whose payload is not a decision record is never appended."""
    bad = vote("alice")
    bad["payload"] = base64.b64encode(b'{"hello": 1}').decode()
    with pytest.raises(LedgerError, match="not a decision record"):
        ledger.append(bad)
    assert len(ledger.entries()) == REGISTERED


def test_edited_envelope_row_is_detected(ledger: Ledger) -> None:
    """Replacing the envelope of a row breaks its hash; verify names that seq."""
    for actor in ("alice", "bob"):
        ledger.append(vote(actor, ledger))
    other = json.dumps(vote("bob", kind="veto"), sort_keys=True)
    tamper(ledger, "UPDATE TABLE SET envelope = ? WHERE seq = ?", other, 3)
    report = verify(ledger)
    assert not report.ok and report.broken is not None
    assert (report.broken.seq, report.broken.field) == (3, "entry_hash")
    assert report.checked == 2 and report.state.head_seq == 2


def test_edited_replay_column_is_detected(ledger: Ledger) -> None:
    """Changing the kind column is caught against the signed payload."""
    ledger.append(vote("alice", ledger))
    tamper(ledger, "UPDATE TABLE SET kind = ? WHERE seq = ?", "veto", 3)
    report = verify(ledger)
    assert report.broken is not None and report.broken.field == "kind"


def test_deleted_row_is_detected(ledger: Ledger) -> None:
    """Deleting a row breaks the sequence at the next one."""
    for actor in ("alice", "bob"):
        ledger.append(vote(actor, ledger))
    tamper(ledger, "DELETE FROM TABLE WHERE seq = ?", 3)
    report = verify(ledger)
    assert report.broken is not None and report.broken.seq == 4
    assert report.broken.field == "seq"


def _broken(ledger: Ledger, envelope: dict) -> str:
    ledger.append(envelope)
    report = verify(ledger)
    assert report.broken is not None and report.broken.seq == REGISTERED + 1
    return report.broken.message


def test_forged_signature_is_detected(ledger: Ledger) -> None:
    """A record whose payload was edited after signing fails verification."""
    envelope = vote("alice", ledger)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["predicate"]["reason"] = "changed"
    envelope["payload"] = base64.b64encode(rfc8785.dumps(payload)).decode()
    assert "signature does not verify" in _broken(ledger, envelope)


def test_unknown_key_is_detected(ledger: Ledger) -> None:
    """A record signed by a key that is not the actor's roster key is refused."""
    stranger = new_signer("alice")
    envelope = signed_decision(
        stranger,
        kind="approve",
        role="council",
        version="1.0.0",
        subject=SUBJECT,
        time=T0,
        anchor=head(ledger),
    )
    assert "not the roster key of 'alice'" in _broken(ledger, envelope)


def test_unknown_actor_is_detected(ledger: Ledger) -> None:
    """An actor missing from the roster is refused."""
    envelope = signed_decision(
        new_signer("mallory"),
        kind="approve",
        role="council",
        version="1.0.0",
        subject=SUBJECT,
        time=T0,
        anchor=head(ledger),
    )
    assert "not on the roster" in _broken(ledger, envelope)


def test_wrong_role_is_detected(ledger: Ledger) -> None:
    """A role the roster does not grant is refused."""
    message = _broken(ledger, vote("alice", ledger, role="steward"))
    assert "does not grant role 'steward'" in message


def test_role_may_not_take_this_decision(ledger: Ledger) -> None:
    """A council member cannot sign a pipeline record (pipeline only)."""
    message = _broken(ledger, vote("alice", ledger, kind="gates-attested"))
    assert "role 'council' may not sign 'gates-attested'" in message


def test_expired_key_is_detected(ledger: Ledger) -> None:
    """A key past its validity window is refused."""
    assert "expired" in _broken(ledger, vote("old", ledger))


def test_revoked_key_is_detected_even_if_backdated(ledger: Ledger) -> None:
    """A revoked key cannot back-date a record to before its revocation."""
    message = _broken(ledger, vote("gone", ledger, time=datetime(2026, 9, 1, tzinfo=UTC)))
    assert "revoked" in message


def test_record_about_another_model_is_detected(ledger: Ledger) -> None:
    """A record whose subject is another model's digests is refused for this version."""
    assert "another model" in _broken(ledger, vote("alice", ledger, subject=OTHER))


def test_future_dated_record_is_detected(ledger: Ledger) -> None:
    """A record claiming a time far after the ledger recorded it is refused."""
    message = _broken(ledger, vote("alice", ledger, time=T0 + timedelta(days=1)))
    assert "too far from when the ledger recorded it" in message


def test_back_dated_record_beyond_the_skew_is_detected(ledger: Ledger) -> None:
    """A record claiming a time long before it was recorded is refused (both directions)."""
    skew = POLICY.clock_skew_seconds
    assert verify_ledger(ledger.entries(), GOV.roster, POLICY).ok
    message = _broken(ledger, vote("alice", ledger, time=T0 - timedelta(seconds=skew + 1)))
    assert "too far from when the ledger recorded it" in message


def test_recorded_time_never_goes_backwards(tmp_path: Path) -> None:
    """An entry is recorded no earlier than its predecessor, even when the clock steps back."""
    clock = FixedClock(T0)
    ledger = MemoryLedger(clock=clock)
    register(ledger)
    clock.advance(minutes=-5)
    entry = ledger.append(vote("alice", ledger))
    assert entry.recorded_at == ledger.entries()[1].recorded_at


def test_open_ledger_locations(tmp_path: Path) -> None:
    """Paths open SQLite; unsupported URLs are refused with the expected forms."""
    ledger = open_ledger(str(tmp_path / "l.sqlite"))
    assert isinstance(ledger, SQLiteLedger)
    ledger.close()
    with pytest.raises(LedgerError, match="unsupported ledger location"):
        open_ledger("mysql://x")


def test_engine_refuses_what_verify_detects() -> None:
    """The same verification runs before appending: a forged record never enters."""
    from core.decisions.records import verify_decision

    with pytest.raises(AuthorizationError):
        verify_decision(vote("old"), GOV.roster, at=T0)
    with pytest.raises(VerificationError):
        verify_decision(vote("alice", subject=OTHER), GOV.roster, at=T0, expected_subject=SUBJECT)
