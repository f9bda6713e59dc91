"""What the verified replay produces: each version's state and the channel's, as frozen values.

A version moves through these states (:data:`VersionStateName`):

``registered`` → ``under_review`` (first approval) → ``promoted`` (the rules are met: derived at
once by the replay) → ``superseded`` (another version promoted after it) — or ``vetoed`` (a
counted veto before promotion) or ``rolled_back`` (rolled back while in production; production
returns to the last good version, or is left empty).

:data:`PENDING` versions await decisions; :data:`SETTLED` versions take none any more. What the
rules need to know about a version (submitter, concerned stewards, the rules it is decided
under) are its :class:`VersionFacts`, signed in its ``registered`` record. Besides votes, a
version carries council waivers of failing gates (:class:`Waiver`) and the breaches its
monitoring runs opened (:class:`Breach`) until a later in-bounds run or a working-group
``resolve`` closes them.

:class:`ChannelState` is the channel (production, staging, versions); :class:`VerifiedState`
adds where in the chain it was verified (``head_seq``, ``head_hash``, ``max_roster_serial``),
the facts and subjects of every version, and the channel's history as :class:`ChannelEvent`
values: promotions and person-triggered rollbacks are *derived* (never stored as rows),
automatic rollbacks are pipeline-signed records. Only :mod:`core.decisions.verify` builds a
:class:`VerifiedState`; :mod:`core.decisions.rules` reads one to say who may act now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.decisions.records import GENESIS, Anchor, EvidenceRef, VersionFacts
from core.signing.digests import ModelSubject

VersionStateName = Literal[
    "registered", "under_review", "promoted", "vetoed", "rolled_back", "superseded"
]
PENDING: frozenset[str] = frozenset({"registered", "under_review"})
SETTLED: frozenset[str] = frozenset({"vetoed", "rolled_back", "superseded"})
PRODUCTION = "production"

__all__ = [
    "PENDING",
    "PRODUCTION",
    "SETTLED",
    "Breach",
    "ChannelEvent",
    "ChannelState",
    "MonitoringRef",
    "VerifiedState",
    "VersionFacts",
    "VersionState",
    "VersionStateName",
    "Vote",
    "Waiver",
]


@dataclass(frozen=True)
class Vote:
    """One approval or veto as replayed."""

    actor: str
    role: str
    seq: int
    recorded_at: str
    reason: str = ""


@dataclass(frozen=True)
class Waiver:
    """A council member's signed waiver of one failing gate."""

    actor: str
    gate: str
    seq: int
    recorded_at: str
    reason: str = ""


@dataclass(frozen=True)
class Breach:
    """An open breach of a version, opened by the monitoring record at ``seq``."""

    kind: str
    seq: int
    recorded_at: str
    reason: str = ""


@dataclass(frozen=True)
class MonitoringRef:
    """The latest monitoring record of a version: where, what it breached, its evidence."""

    seq: int
    breaches: tuple[str, ...]
    evidence: tuple[EvidenceRef, ...]

    def evidence_named(self, suffix: str) -> EvidenceRef | None:
        """The evidence file whose name ends with ``suffix`` (e.g. ``/drift_summary.json``)."""
        return next((e for e in self.evidence if e.name.endswith(suffix)), None)


@dataclass(frozen=True)
class VersionState:
    """One version's state after replay."""

    version: str
    state: VersionStateName
    registered_seq: int
    gates_attested: bool = False
    gates_failed: tuple[str, ...] = ()
    approvals: tuple[Vote, ...] = ()
    vetoes: tuple[Vote, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    breaches: tuple[Breach, ...] = ()
    last_run: MonitoringRef | None = None
    promoted_seq: int | None = None
    rolled_back_seq: int | None = None
    rollback_target: str | None = None
    missing: tuple[str, ...] = ()

    def approvers(self, role: str) -> list[str]:
        """Distinct actors who approved in ``role``."""
        return sorted({v.actor for v in self.approvals if v.role == role})

    def waivers_of(self, gate: str) -> list[str]:
        """Distinct council members who waived ``gate``."""
        return sorted({w.actor for w in self.waivers if w.gate == gate})

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "state": self.state,
            "registered_seq": self.registered_seq,
            "gates_attested": self.gates_attested,
            "gates_failed": list(self.gates_failed),
            "approvals": [v.__dict__ for v in self.approvals],
            "vetoes": [v.__dict__ for v in self.vetoes],
            "waivers": [w.__dict__ for w in self.waivers],
            "open_breaches": [b.__dict__ for b in self.breaches],
            "promoted_seq": self.promoted_seq,
            "rolled_back_seq": self.rolled_back_seq,
            "rollback_target": self.rollback_target,
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class ChannelEvent:
    """A change of production: a promotion or a rollback, and the ledger entry that caused it.

    ``derived`` events follow from the rules (a promotion once a version's rules are met, a
    rollback by a person's veto or request) and are never stored as rows; a pipeline-signed
    ``rollback`` record is the one event that is itself an entry (``derived`` false).
    """

    kind: Literal["promotion", "rollback"]
    version: str
    seq: int
    recorded_at: str
    cause: str  # the kind of the record at ``seq`` (approve, veto, monitoring, rollback...)
    trigger: str
    actor: str
    role: str
    reason: str
    derived: bool
    production_before: str | None
    production_after: str | None
    evidence: tuple[EvidenceRef, ...] = ()
    record_sha256: str | None = None
    last_run: MonitoringRef | None = None

    @property
    def said(self) -> str:
        """One line for people: what happened to production."""
        if self.kind == "promotion":
            return f"{self.version} promoted to production ({self.reason})"
        after = (
            f"{self.production_after} restored"
            if self.production_after
            else "production left empty (no earlier good version)"
        )
        if self.derived:
            return f"{self.version} rolled back by the {self.trigger} of {self.actor} ({self.role}): {after}"
        return f"{self.version} rolled back automatically ({self.trigger} breach): {after}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "seq": self.seq,
            "recorded_at": self.recorded_at,
            "cause": self.cause,
            "trigger": self.trigger,
            "actor": self.actor,
            "role": self.role,
            "reason": self.reason,
            "derived": self.derived,
            "production_before": self.production_before,
            "production_after": self.production_after,
            "said": self.said,
        }


@dataclass(frozen=True)
class ChannelState:
    """The channel: what is in production and staging, and every version's state."""

    production: str | None
    staging: str | None
    versions: Mapping[str, VersionState]
    head_seq: int
    at: str | None = None
    promotions: Sequence[str] = ()  # versions in promotion order (repeats after rollbacks)

    def version(self, version: str) -> VersionState | None:
        return self.versions.get(version)

    def last_good_version(self, *, excluding: str | None = None) -> str | None:
        """The most recently promoted version, other than ``excluding``, still good.

        Good: promoted or superseded (never vetoed nor rolled back), with no open breach.
        """
        for candidate in reversed(self.promotions):
            if candidate == excluding:
                continue
            state = self.versions.get(candidate)
            good = state is not None and state.state in ("promoted", "superseded")
            if good and state is not None and not state.breaches:
                return candidate
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "head_seq": self.head_seq,
            "production": self.production,
            "staging": self.staging,
            "versions": {v: s.to_dict() for v, s in sorted(self.versions.items())},
        }


@dataclass(frozen=True)
class VerifiedState(ChannelState):
    """The channel as verified up to ``head_seq`` (see the module docstring).

    ``head_hash`` is the entry hash of ``head_seq`` (:data:`GENESIS` for an empty ledger);
    ``max_roster_serial`` the highest ``roster_serial`` any verified record carries (``None``
    when none does). ``entry_hashes[i]`` is the hash of entry ``i + 1`` (anchors are checked
    against it) and ``record_digests`` the payload digests of every record (a signed record is
    appended once).
    """

    head_hash: str = GENESIS
    head_recorded_at: str | None = None
    max_roster_serial: int | None = None
    events: tuple[ChannelEvent, ...] = ()
    facts: Mapping[str, VersionFacts] = field(default_factory=dict)
    subjects: Mapping[str, ModelSubject] = field(default_factory=dict)
    entry_hashes: tuple[str, ...] = field(default=(), repr=False)
    record_digests: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def anchor(self) -> Anchor:
        """The head as a record's anchor: what a record built now says its signer saw."""
        return Anchor(seq=self.head_seq, entry_hash=self.head_hash)

    def hash_at(self, seq: int) -> str | None:
        """The entry hash at ``seq`` (``GENESIS`` for 0; ``None`` past the head)."""
        if seq == 0:
            return GENESIS
        return self.entry_hashes[seq - 1] if 0 < seq <= len(self.entry_hashes) else None

    def unregistered(self, registry_versions: Sequence[str]) -> list[str]:
        """The committed registry versions no verified ``registered`` record names, in order.

        A deploy cut off between its push (the registry commit) and its ledger records leaves
        one (``kfm registry fsck --register`` completes it); so does a ledger truncated after
        the version was registered.
        """
        return [v for v in registry_versions if v not in self.facts]

    def events_at(self, seq: int) -> tuple[ChannelEvent, ...]:
        """The channel events the entry at ``seq`` caused."""
        return tuple(e for e in self.events if e.seq == seq)

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "head_hash": self.head_hash,
            "max_roster_serial": self.max_roster_serial,
            "events": [e.to_dict() for e in self.events],
            "facts": {v: f.to_dict() for v, f in sorted(self.facts.items())},
        }
