"""Verify a whole ledger: chain, signatures, roles at the record's time, subjects.

:func:`verify_ledger` walks the entries in order and stops at the first broken one, naming its
``seq``, the field and what was expected vs found. For each entry it checks:

1. position: ``seq`` is the next number and ``prev_hash`` is the previous entry's hash;
2. ``entry_hash`` recomputed over (seq, prev_hash, recorded_at, envelope digest);
3. the DSSE signature, the actor's roster key, and the role granted at the record's time
   (:func:`core.decisions.records.verify_decision`), and again at the time the ledger recorded it,
   so a revoked key cannot back-date a record; the record may not claim a time after it was
   recorded (beyond :data:`CLOCK_SKEW`);
4. the role may take this kind of decision (:data:`core.decisions.rules.ALLOWED_ROLES`);
5. the row's replay fields equal the signed payload (an edited column is caught);
6. when the caller gives the registry's subjects, the record is about that version's model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core.decisions.ledger import (
    GENESIS,
    LedgerEntry,
    entry_hash,
    envelope_sha256,
    format_time,
    parse_time,
)
from core.decisions.records import envelope_from_dict, verify_decision
from core.decisions.roster import TrustedRoster
from core.decisions.rules import ALLOWED_ROLES
from core.errors import KfmError
from core.signing.digests import ModelSubject

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class BrokenEntry:
    """The first entry that failed, and why."""

    seq: int
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class LedgerReport:
    """Outcome of :func:`verify_ledger`."""

    checked: int
    entries: int
    broken: BrokenEntry | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "entries": self.entries,
            "first_broken": None if self.broken is None else self.broken.to_dict(),
        }


def verify_entry(
    entry: LedgerEntry,
    previous: LedgerEntry | None,
    roster: TrustedRoster,
    subjects: Mapping[str, ModelSubject] | None = None,
) -> BrokenEntry | None:
    """The problem with one entry given its predecessor, or ``None``."""
    expected_seq = previous.seq + 1 if previous else 1
    if entry.seq != expected_seq:
        return BrokenEntry(entry.seq, "seq", f"expected seq {expected_seq}, found {entry.seq}")
    expected_prev = previous.entry_hash if previous else GENESIS
    if entry.prev_hash != expected_prev:
        return BrokenEntry(
            entry.seq, "prev_hash", f"expected {expected_prev}, found {entry.prev_hash}"
        )
    try:
        envelope = entry.envelope_dict()
        recomputed = entry_hash(
            entry.seq, entry.prev_hash, entry.recorded_at, envelope_sha256(entry.envelope)
        )
    except (ValueError, TypeError) as error:
        return BrokenEntry(entry.seq, "envelope", f"not a JSON envelope: {error}")
    if recomputed != entry.entry_hash:
        return BrokenEntry(
            entry.seq,
            "entry_hash",
            f"row was edited: expected hash {recomputed}, found {entry.entry_hash}",
        )
    expected_subject = subjects.get(entry.version) if subjects is not None else None
    try:
        # The row's envelope was parsed just above and is not used again: no defensive copy.
        parsed = envelope_from_dict(envelope, copy=False)
        record = verify_decision(parsed, roster, expected_subject=expected_subject)
        recorded = parse_time(entry.recorded_at)
        roster.authorize(record.actor, record.role, recorded)
    except KfmError as error:
        return BrokenEntry(entry.seq, error.field or "envelope", error.diagnostics())
    if record.time > recorded + CLOCK_SKEW:
        return BrokenEntry(
            entry.seq,
            "time",
            f"record claims {format_time(record.time)}, after it was recorded "
            f"({entry.recorded_at})",
        )
    if record.role not in ALLOWED_ROLES[record.kind]:
        return BrokenEntry(
            entry.seq,
            "role",
            f"role '{record.role}' may not sign '{record.kind}' "
            f"(expected one of {sorted(ALLOWED_ROLES[record.kind])})",
        )
    signed = {
        "kind": record.kind,
        "actor": record.actor,
        "role": record.role,
        "version": record.version,
        "time": format_time(record.time),
        "target_version": record.target_version,
    }
    for name, value in signed.items():
        if getattr(entry, name) != value:
            return BrokenEntry(
                entry.seq,
                name,
                f"row field differs from the signed record: expected {value!r}, "
                f"found {getattr(entry, name)!r}",
            )
    return None


def verify_ledger(
    entries: Sequence[LedgerEntry],
    roster: TrustedRoster,
    *,
    subjects: Mapping[str, ModelSubject] | None = None,
) -> LedgerReport:
    """Check every entry in order; the report names the first broken one."""
    previous: LedgerEntry | None = None
    for index, entry in enumerate(entries):
        broken = verify_entry(entry, previous, roster, subjects)
        if broken is not None:
            return LedgerReport(checked=index, entries=len(entries), broken=broken)
        previous = entry
    return LedgerReport(checked=len(entries), entries=len(entries))
