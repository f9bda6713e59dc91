"""Channel state as a fold of *verified* ledger entries, with the promotions and rollbacks they imply.

:class:`Fold` applies one verified entry at a time (:meth:`Fold.apply`); only
:mod:`core.decisions.verify` feeds it, after checking the entry's chain position, signature,
role at its recorded time, anchor and the rules of :mod:`core.decisions.rules` on the state
folded so far. Applying an entry may cause *derived* events (:class:`ChannelEvent`), never
stored as rows:

- **promotion** — right after any entry about a pending version, if
  :func:`~core.decisions.rules.missing_rules` finds nothing missing (quorum, stewards, gates
  attested and every failing gate waived, no open breach) and no veto counted, the version is
  promoted; the previous production version is superseded;
- **rollback by a person** — a counted ``veto`` or a ``request-rollback`` of the production
  version rolls it back to the last good version (``None``: production left empty).

A pipeline-signed ``rollback`` (drift, telemetry, validation, sovereignty) is applied the same
way, as a non-derived event. A ``monitoring`` record with breaches opens them on its version;
a later in-bounds ``monitoring`` record of that version, or a working-group ``resolve``, closes
them.

:func:`replay` ``(entries, *, at=None)`` folds entries that :class:`core.decisions.verify.
VerifiedLedger` has verified (:class:`VerifiedEntry`), up to the time ``at`` (``kfm status
--at``): a cut-off replay never reads an unverified row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.decisions.ledger import LedgerEntry, format_time
from core.decisions.records import GENESIS, DecisionRecord, VersionFacts
from core.decisions.rules import missing_rules, veto_counts
from core.decisions.state import (
    PENDING,
    Breach,
    ChannelEvent,
    ChannelState,
    MonitoringRef,
    VerifiedState,
    VersionState,
    VersionStateName,
    Vote,
    Waiver,
)
from core.signing.digests import ModelSubject


@dataclass(frozen=True)
class VerifiedEntry:
    """A ledger entry with the record its envelope verified to (built by verification only)."""

    entry: LedgerEntry
    record: DecisionRecord
    payload_sha256: str


class Fold:
    """The mutable state of one replay; :meth:`snapshot` freezes it into a VerifiedState."""

    def __init__(self, start: VerifiedState | None = None) -> None:
        s = start
        self.versions: dict[str, VersionState] = dict(s.versions) if s else {}
        self.production: str | None = s.production if s else None
        self.promotions: list[str] = list(s.promotions) if s else []
        self.order: list[str] = (
            sorted(s.versions, key=lambda v: s.versions[v].registered_seq) if s else []
        )
        self.facts: dict[str, VersionFacts] = dict(s.facts) if s else {}
        self.subjects: dict[str, ModelSubject] = dict(s.subjects) if s else {}
        self.events: list[ChannelEvent] = list(s.events) if s else []
        self.entry_hashes: list[str] = list(s.entry_hashes) if s else []
        self.record_digests: set[str] = set(s.record_digests) if s else set()
        self.max_roster_serial: int | None = s.max_roster_serial if s else None
        self.head_seq = s.head_seq if s else 0
        self.head_hash = s.head_hash if s else GENESIS
        self.head_recorded_at: str | None = s.head_recorded_at if s else None
        self._digest: str | None = None  # payload digest of the entry being applied

    def view(self) -> ChannelState:
        """The channel so far, for the rules (shares the fold's dicts: read it, do not keep it)."""
        return ChannelState(
            production=self.production,
            staging=None,
            versions=self.versions,
            head_seq=self.head_seq,
            promotions=self.promotions,
        )

    def snapshot(self, *, at: str | None = None) -> VerifiedState:
        staging = next((v for v in reversed(self.order) if self.versions[v].state in PENDING), None)
        return VerifiedState(
            production=self.production,
            staging=staging,
            versions=dict(self.versions),
            head_seq=self.head_seq,
            at=at,
            promotions=tuple(self.promotions),
            head_hash=self.head_hash,
            head_recorded_at=self.head_recorded_at,
            max_roster_serial=self.max_roster_serial,
            events=tuple(self.events),
            facts=dict(self.facts),
            subjects=dict(self.subjects),
            entry_hashes=tuple(self.entry_hashes),
            record_digests=frozenset(self.record_digests),
        )

    # ------------------------------------------------------------------ applying
    def apply(self, verified: VerifiedEntry) -> None:
        """Apply one verified, rule-checked entry (and the events it causes)."""
        entry, record = verified.entry, verified.record
        self._digest = verified.payload_sha256
        self.head_seq, self.head_hash = entry.seq, entry.entry_hash
        self.head_recorded_at = entry.recorded_at
        self.entry_hashes.append(entry.entry_hash)
        self.record_digests.add(verified.payload_sha256)
        if record.roster_serial is not None:
            self.max_roster_serial = max(self.max_roster_serial or 0, record.roster_serial)
        version, kind = record.version, record.kind
        if kind == "registered":
            assert record.facts is not None  # a registered record always carries its facts
            self.versions[version] = VersionState(version, "registered", entry.seq)
            self.facts[version] = record.facts
            self.subjects[version] = record.subject
            self.order.append(version)
        else:
            self._apply_to_version(entry, record, self.versions[version])
        self._settle(entry, record)

    def _apply_to_version(
        self, entry: LedgerEntry, record: DecisionRecord, current: VersionState
    ) -> None:
        version, kind = record.version, record.kind
        vote = Vote(record.actor, record.role, entry.seq, entry.recorded_at, record.reason)
        if kind == "gates-attested":
            current = _with(current, gates_attested=True, gates_failed=record.gates_failed)
        elif kind == "approve":
            current = _with(current, approvals=(*current.approvals, vote), state="under_review")
        elif kind == "veto" and veto_counts(record.role, record.actor, self.facts.get(version)):
            current = _with(current, vetoes=(*current.vetoes, vote))
            if current.state in PENDING:
                current = _with(current, state="vetoed")
        elif kind == "waive":
            assert record.gate is not None  # a waive record always names its gate
            waiver = Waiver(record.actor, record.gate, entry.seq, entry.recorded_at, record.reason)
            current = _with(current, waivers=(*current.waivers, waiver))
        elif kind == "resolve":
            current = _with(current, breaches=())
        elif kind == "monitoring":
            run = MonitoringRef(entry.seq, record.breaches, record.evidence)
            kept = tuple(b for b in current.breaches if b.kind not in record.breaches)
            opened = tuple(
                Breach(kind, entry.seq, entry.recorded_at, record.reason)
                for kind in record.breaches
            )
            breaches = tuple(sorted(kept + opened, key=lambda b: b.kind)) if opened else ()
            current = _with(current, last_run=run, breaches=breaches)
        self.versions[version] = current

    def _settle(self, entry: LedgerEntry, record: DecisionRecord) -> None:
        """The consequences of ``record`` on production: rollbacks, then a promotion."""
        version = record.version
        in_production = self.production == version
        if record.kind == "rollback":
            self._roll_back(entry, record, trigger=", ".join(record.breaches), derived=False)
        elif in_production and record.kind in ("veto", "request-rollback"):
            counted = record.kind == "request-rollback" or any(
                v.seq == entry.seq for v in self.versions[version].vetoes
            )
            if counted:
                self._roll_back(entry, record, trigger=record.kind, derived=True)
        current = self.versions[version]
        if current.state not in PENDING:
            return
        missing = missing_rules(current, self.facts[version])
        if missing or current.vetoes:
            state: VersionStateName = "under_review" if current.approvals else "registered"
            if (missing, state) != (current.missing, current.state):
                self.versions[version] = _with(current, missing=missing, state=state)
            return
        before = self.production
        if before is not None and before != version:
            self.versions[before] = _with(self.versions[before], state="superseded")
        self.production = version
        self.promotions.append(version)
        self.versions[version] = _with(
            current, state="promoted", promoted_seq=entry.seq, missing=()
        )
        approvals = ", ".join(f"{v.actor} ({v.role})" for v in current.approvals)
        self.events.append(
            ChannelEvent(
                kind="promotion",
                version=version,
                seq=entry.seq,
                recorded_at=entry.recorded_at,
                cause=record.kind,
                trigger="decision rules met",
                actor=record.actor,
                role=record.role,
                reason=f"rules met: approved by {approvals or 'nobody'}",
                derived=True,
                production_before=before,
                production_after=version,
                evidence=record.evidence,
                record_sha256=self._digest,
                last_run=current.last_run,
            )
        )

    def _roll_back(
        self, entry: LedgerEntry, record: DecisionRecord, *, trigger: str, derived: bool
    ) -> None:
        version = record.version
        target = (
            record.target_version
            if not derived
            else self.view().last_good_version(excluding=version)
        )
        self.versions[version] = _with(
            self.versions[version],
            state="rolled_back",
            rolled_back_seq=entry.seq,
            rollback_target=target,
        )
        self.production = target
        if target is not None:
            self.versions[target] = _with(self.versions[target], state="promoted")
            self.promotions.append(target)
        self.events.append(
            ChannelEvent(
                kind="rollback",
                version=version,
                seq=entry.seq,
                recorded_at=entry.recorded_at,
                cause=record.kind,
                trigger=trigger,
                actor=record.actor,
                role=record.role,
                reason=record.reason,
                derived=derived,
                production_before=version,
                production_after=target,
                evidence=record.evidence,
                record_sha256=self._digest,
                last_run=self.versions[version].last_run,
            )
        )


def _with(current: VersionState, /, **changes: Any) -> VersionState:
    """``current`` with ``changes`` (dataclasses.replace without its per-call introspection)."""
    return VersionState(**{**current.__dict__, **changes})


def replay(entries: Sequence[VerifiedEntry], *, at: datetime | None = None) -> VerifiedState:
    """The channel after the verified ``entries`` recorded up to ``at`` (all when ``None``)."""
    cutoff = format_time(at) if at is not None else None
    fold = Fold()
    for verified in entries:
        if cutoff is not None and verified.entry.recorded_at > cutoff:
            break
        fold.apply(verified)
    return fold.snapshot(at=cutoff)
