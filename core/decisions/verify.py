"""One verified replay: every entry checked, in order, then folded into the channel state.

:func:`verify_and_replay` walks the entries once and, for each, stops at the first failure
with a :class:`BrokenEntryError` (a :class:`core.errors.LedgerError`) naming the entry's seq,
the field, what was expected and what was found:

1. chain position: ``seq`` is the next number, ``prev_hash`` the previous entry's hash,
   ``entry_hash`` recomputed over (seq, prev_hash, recorded_at, envelope digest), and
   ``recorded_at`` not before the previous entry's;
2. the DSSE signature by the actor's roster key, the role granted **at the recorded time**
   (never at the record's own claimed time, which its signer chooses), and the claimed time
   within ``clock_skew_seconds`` of the recorded time in both directions — so a revoked key
   cannot back-date a record;
3. the anchor (the head the signer saw) is an earlier entry with exactly that hash; the row's
   columns equal the signed payload; the record is about the model its version registered; a
   signed record appears once;
4. the rules at that point of the chain: :func:`core.decisions.rules.refusal` for a person's
   record (a validly signed approval by a key not on the roster, a duplicate vote, a
   self-approval, a steward's veto of a version not concerning them, a waiver by a non-council
   actor... inserted straight into the database is a broken entry, never a vote) and
   :func:`core.decisions.rules.pipeline_refusal` for a pipeline record (an automatic rollback
   only of production, justified by an open breach, to the last good version).

It then applies the entry (:class:`core.decisions.replay.Fold`), deriving promotions and
rollbacks. The result is a :class:`core.decisions.state.VerifiedState`.

:class:`VerifiedLedger` keeps the last verified state and extends it incrementally: it
verifies only the entries after the head it verified, as long as that head is still in the
chain at its seq with the same hash (the chain hash then vouches for everything before it); a
reader whose head is gone re-verifies from the start and reports the fork (:attr:`fork`). It
refuses to act with a roster older than one the pipeline's records were signed under
(:attr:`VerifiedState.max_roster_serial`): restoring an earlier signed roster to bring a
revoked key back is a :class:`core.errors.RosterError` for every reader, the engine included.
:meth:`VerifiedLedger.at` replays the verified entries up to a time (``kfm status --at``).

:func:`verify_ledger` is the non-raising form for ``kfm ledger verify``: a
:class:`LedgerReport` that names the first broken entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.decisions.ledger import (
    GENESIS,
    Ledger,
    LedgerEntry,
    entry_hash,
    envelope_sha256,
    format_time,
    parse_time,
)
from core.decisions.records import (
    HUMAN_KINDS,
    DecisionRecord,
    envelope_from_dict,
    verify_decision,
)
from core.decisions.replay import Fold, VerifiedEntry, replay
from core.decisions.roster import TrustedRoster, check_roster_serial
from core.decisions.rules import pipeline_refusal, refusal
from core.decisions.state import VerifiedState
from core.errors import KfmError, LedgerError
from core.policy import DecisionPolicy


class BrokenEntryError(LedgerError):
    """A ledger entry that does not verify; nothing acts on the ledger past it."""

    def __init__(
        self, seq: int, message: str, *, field: str, expected: Any = None, found: Any = None
    ) -> None:
        self.seq = seq
        self.reason = message
        super().__init__(
            f"ledger entry #{seq} is broken: {message}",
            field=field,
            expected=expected,
            found=found,
            hint="nothing acts on this ledger until it is repaired; `kfm ledger verify` names "
            "the entry",
        )


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
    """Outcome of :func:`verify_ledger`: how far it verified, and the state there."""

    checked: int
    entries: int
    state: VerifiedState
    broken: BrokenEntry | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "entries": self.entries,
            "head_seq": self.state.head_seq,
            "head_hash": self.state.head_hash,
            "first_broken": None if self.broken is None else self.broken.to_dict(),
        }


def _fail(entry: LedgerEntry, field: str, message: str, **kw: Any) -> BrokenEntryError:
    return BrokenEntryError(entry.seq, message, field=field, **kw)


def check_entry(
    fold: Fold, entry: LedgerEntry, roster: TrustedRoster, policy: DecisionPolicy
) -> VerifiedEntry:
    """The verified form of ``entry`` as the next entry after ``fold``; raises if it is broken."""
    _check_position(fold, entry)
    try:
        envelope = entry.envelope_dict()
        stored_digest = envelope_sha256(entry.envelope)
    except (ValueError, TypeError) as error:
        raise _fail(entry, "envelope", f"not a JSON envelope: {error}") from error
    recomputed = entry_hash(entry.seq, entry.prev_hash, entry.recorded_at, stored_digest)
    if recomputed != entry.entry_hash:
        raise _fail(
            entry, "entry_hash", "row was edited", expected=recomputed, found=entry.entry_hash
        )
    recorded = parse_time(entry.recorded_at)
    try:
        # The row's envelope was parsed just above and is not used again: no defensive copy.
        parsed = envelope_from_dict(envelope, copy=False)
        record = verify_decision(
            parsed, roster, at=recorded, expected_subject=fold.subjects.get(entry.version)
        )
    except KfmError as error:
        raise _fail(
            entry,
            error.field or "envelope",
            error.message,
            expected=error.expected,
            found=error.found,
        ) from error
    skew = timedelta(seconds=policy.clock_skew_seconds)
    if abs(record.time - recorded) > skew:
        raise _fail(
            entry,
            "predicate.time",
            "the record's signed time is too far from when the ledger recorded it",
            expected=f"within {policy.clock_skew_seconds} s of {entry.recorded_at}",
            found=format_time(record.time),
        )
    _check_anchor(fold, entry, record)
    _check_columns(entry, record)
    payload_sha256 = hashlib.sha256(parsed.payload).hexdigest()
    if payload_sha256 in fold.record_digests:
        raise _fail(
            entry,
            "envelope",
            "this signed record is already in the ledger (a replayed copy)",
            expected="each signed record once",
            found="a copy of an earlier entry",
        )
    _check_rules(fold, entry, record)
    return VerifiedEntry(entry, record, payload_sha256)


def _check_position(fold: Fold, entry: LedgerEntry) -> None:
    if entry.seq != fold.head_seq + 1:
        raise _fail(entry, "seq", "out of sequence", expected=fold.head_seq + 1, found=entry.seq)
    if entry.prev_hash != fold.head_hash:
        raise _fail(
            entry,
            "prev_hash",
            "does not link to the previous entry",
            expected=fold.head_hash,
            found=entry.prev_hash,
        )
    if fold.head_recorded_at is not None and entry.recorded_at < fold.head_recorded_at:
        raise _fail(
            entry,
            "recorded_at",
            "recorded before the previous entry",
            expected=f"at or after {fold.head_recorded_at}",
            found=entry.recorded_at,
        )


def _check_anchor(fold: Fold, entry: LedgerEntry, record: DecisionRecord) -> None:
    anchor = record.anchor
    if anchor.seq >= entry.seq:
        raise _fail(
            entry,
            "predicate.anchor.seq",
            "the record claims to have seen a head at or after its own position",
            expected=f"an earlier entry (< {entry.seq})",
            found=anchor.seq,
        )
    seen = GENESIS if anchor.seq == 0 else fold.entry_hashes[anchor.seq - 1]
    if anchor.entry_hash != seen:
        raise _fail(
            entry,
            "predicate.anchor.entry_hash",
            f"the head its signer saw is not entry #{anchor.seq} of this ledger "
            "(entries were deleted, reordered or rewritten)",
            expected=seen,
            found=anchor.entry_hash,
        )


def _check_columns(entry: LedgerEntry, record: DecisionRecord) -> None:
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
            raise _fail(
                entry,
                name,
                "row column differs from the signed record",
                expected=value,
                found=getattr(entry, name),
            )


def _check_rules(fold: Fold, entry: LedgerEntry, record: DecisionRecord) -> None:
    state = fold.view()
    if record.kind in HUMAN_KINDS:
        refused = refusal(
            record.kind,
            record.role,
            record.actor,
            record.version,
            state=state,
            facts=fold.facts.get(record.version),
            gate=record.gate,
            anchor=record.anchor,
        )
    else:
        refused = pipeline_refusal(record, state=state)
    if refused is not None:
        raise _fail(
            entry,
            refused.field or "predicate",
            f"breaks the decision rules at this point of the chain: {refused.message}",
            expected=refused.expected,
            found=refused.found,
        )


def verify_and_replay(
    entries: Sequence[LedgerEntry],
    roster: TrustedRoster,
    policy: DecisionPolicy,
    *,
    start: VerifiedState | None = None,
    verified: list[VerifiedEntry] | None = None,
) -> VerifiedState:
    """Verify ``entries`` (the ones after ``start``'s head) and fold them; raises when broken.

    ``verified``, when given, receives each verified entry (for :func:`replay` at a time).
    """
    fold = Fold(start)
    for entry in entries:
        checked = check_entry(fold, entry, roster, policy)
        fold.apply(checked)
        if verified is not None:
            verified.append(checked)
    return fold.snapshot()


def verify_ledger(
    entries: Sequence[LedgerEntry], roster: TrustedRoster, policy: DecisionPolicy
) -> LedgerReport:
    """Check every entry in order; the report names the first broken one (never raises)."""
    fold = Fold()
    for index, entry in enumerate(entries):
        try:
            fold.apply(check_entry(fold, entry, roster, policy))
        except BrokenEntryError as error:
            broken = BrokenEntry(error.seq, error.field or "entry", error.diagnostics())
            return LedgerReport(index, len(entries), fold.snapshot(), broken)
    return LedgerReport(len(entries), len(entries), fold.snapshot())


class VerifiedLedger:
    """The verified state of one ledger, extended as the ledger grows (see module docstring)."""

    def __init__(self, roster: TrustedRoster, policy: DecisionPolicy) -> None:
        self.roster = roster
        self.policy = policy
        self._state: VerifiedState | None = None
        self._verified: list[VerifiedEntry] = []
        self.fork: str | None = None
        """Why the last update started over (the head verified before is gone), else None."""

    @property
    def state(self) -> VerifiedState | None:
        """The last verified state (``None`` before the first update)."""
        return self._state

    @property
    def entries(self) -> list[LedgerEntry]:
        """The verified entries, as they were when verified (what display may show)."""
        return [v.entry for v in self._verified]

    @property
    def verified_entries(self) -> list[VerifiedEntry]:
        """The verified entries with their signed records."""
        return list(self._verified)

    def update(self, entries: Sequence[LedgerEntry]) -> VerifiedState:
        """The verified state of ``entries`` (the whole ledger), verifying only what is new."""
        known = self._state
        if known is not None and self._still_there(known, entries):
            new = entries[known.head_seq :]
            if not new:
                return known
            return self._extend(known, new)
        if known is not None:
            self.fork = (
                f"the ledger no longer holds entry #{known.head_seq} with hash "
                f"{known.head_hash[:16]}… verified before (truncated or rewritten): "
                "verified again from the start"
            )
        self._state, self._verified = None, []
        return self._extend(None, entries)

    def refresh(self, ledger: Ledger) -> VerifiedState:
        """Read what is new in ``ledger`` (from the head verified before) and verify it."""
        known = self._state
        if known is None:
            return self.update(ledger.entries())
        rows = ledger.read_from(max(known.head_seq, 1))
        if known.head_seq == 0 or (rows and rows[0].entry_hash == known.head_hash):
            new = rows if known.head_seq == 0 else rows[1:]
            return self._extend(known, new) if new else known
        return self.update(ledger.entries())

    def at(self, when: datetime) -> VerifiedState:
        """The channel as it was at ``when``, replayed from the entries verified so far."""
        return replay(self._verified, at=when)

    def _extend(self, start: VerifiedState | None, entries: Sequence[LedgerEntry]) -> VerifiedState:
        verified: list[VerifiedEntry] = []
        state = verify_and_replay(entries, self.roster, self.policy, start=start, verified=verified)
        if state.max_roster_serial is not None:
            # The pipeline signed records under a newer roster: this one was put back. Checked
            # before the state is kept, so every later read refuses too.
            where = f"the ledger's pipeline records (up to entry #{state.head_seq})"
            check_roster_serial(self.roster, {where: state.max_roster_serial})
        self._verified.extend(verified)
        self._state = state
        return state

    @staticmethod
    def _still_there(known: VerifiedState, entries: Sequence[LedgerEntry]) -> bool:
        if known.head_seq == 0:
            return True
        return (
            len(entries) >= known.head_seq
            and entries[known.head_seq - 1].entry_hash == known.head_hash
        )
