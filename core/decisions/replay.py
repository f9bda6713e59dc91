"""Channel state as a pure replay of the ledger, and the decision rules of the policy.

:func:`replay` folds ledger entries (in ``seq`` order, optionally only those recorded up to a
time) into a :class:`ChannelState`: which version is in ``production``, which is in ``staging``
(the newest version still awaiting decisions), and each version's state:

``registered`` → ``under_review`` (first approval) → ``approved`` (rules met) → ``promoted`` →
``superseded`` (another version promoted after it) — or ``vetoed`` (veto before promotion) or
``rolled_back`` (rollback while in production; production returns to the last good version).

The rules come from ``[decisions]`` of the policy (:class:`core.policy.DecisionPolicy`):
``council_quorum`` distinct council approvals, an approval by every steward whose region the
footprint touches (``require_concerned_stewards``), a working-group sign-off on drift
(``require_working_group_drift_signoff``), no approval by the submitter counted
(``forbid_self_approval``), and any council or concerned-steward veto blocks. Who submitted a
version and which stewards it concerns are facts of its registry record
(:class:`VersionFacts`), bound to the ledger by the ``registered`` record's evidence digest.

Replay reads the row fields only (no signature checks): verification is
:func:`core.decisions.verify.verify_ledger`'s job, so replaying 10,000 entries stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from core.decisions.ledger import LedgerEntry, format_time
from core.policy import DecisionPolicy

VersionStateName = Literal[
    "registered", "under_review", "approved", "promoted", "vetoed", "rolled_back", "superseded"
]
PENDING: frozenset[str] = frozenset({"registered", "under_review", "approved"})

# Which roster roles may sign which kind of decision record.
ALLOWED_ROLES: Mapping[str, frozenset[str]] = {
    "approve": frozenset({"council", "steward", "working_group"}),
    "veto": frozenset({"council", "steward"}),
    "request-rollback": frozenset({"council", "steward", "working_group"}),
    "monitoring": frozenset({"pipeline", "working_group"}),
    "promote": frozenset({"pipeline"}),
    "rollback": frozenset({"pipeline"}),
    "gates-attested": frozenset({"pipeline"}),
    "registered": frozenset({"pipeline"}),
}


@dataclass(frozen=True)
class VersionFacts:
    """What the registry knows about a version that the rules need."""

    submitter: str
    concerned_stewards: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vote:
    """One approval or veto as replayed."""

    actor: str
    role: str
    seq: int
    recorded_at: str
    reason: str = ""


@dataclass(frozen=True)
class VersionState:
    """One version's state after replay."""

    version: str
    state: VersionStateName
    registered_seq: int
    gates_attested: bool = False
    approvals: tuple[Vote, ...] = ()
    vetoes: tuple[Vote, ...] = ()
    promoted_seq: int | None = None
    rolled_back_seq: int | None = None
    rollback_target: str | None = None
    missing: tuple[str, ...] = ()

    def approvers(self, role: str) -> list[str]:
        """Distinct actors who approved in ``role``."""
        return sorted({v.actor for v in self.approvals if v.role == role})

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "state": self.state,
            "registered_seq": self.registered_seq,
            "gates_attested": self.gates_attested,
            "approvals": [v.__dict__ for v in self.approvals],
            "vetoes": [v.__dict__ for v in self.vetoes],
            "promoted_seq": self.promoted_seq,
            "rolled_back_seq": self.rolled_back_seq,
            "rollback_target": self.rollback_target,
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class ChannelState:
    """The whole channel after replaying the ledger up to ``at`` (or its end)."""

    production: str | None
    staging: str | None
    versions: Mapping[str, VersionState]
    head_seq: int
    at: str | None = None
    promotions: tuple[str, ...] = ()  # versions in promotion order (repeats after rollbacks)

    def version(self, version: str) -> VersionState | None:
        return self.versions.get(version)

    def last_good_version(self, *, excluding: str | None = None) -> str | None:
        """The most recently promoted version, other than ``excluding``, not vetoed/rolled back."""
        for candidate in reversed(self.promotions):
            if candidate == excluding:
                continue
            state = self.versions.get(candidate)
            if state is not None and state.state in ("promoted", "superseded"):
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


def missing_rules(
    state: VersionState, facts: VersionFacts | None, policy: DecisionPolicy
) -> tuple[str, ...]:
    """Human-readable rules ``state`` does not meet yet (empty: it may be promoted)."""
    missing: list[str] = []
    if facts is None:
        return ("a registry record for this version",)
    if not state.gates_attested:
        missing.append("a gates-attested record from the pipeline")
    excluded = {facts.submitter} if policy.forbid_self_approval else set()
    council = [a for a in state.approvers("council") if a not in excluded]
    if len(council) < policy.council_quorum:
        missing.append(
            f"{policy.council_quorum - len(council)} more council approval(s) "
            f"(have {len(council)} of {policy.council_quorum})"
        )
    if policy.require_concerned_stewards:
        stewards = set(state.approvers("steward"))
        for steward in facts.concerned_stewards:
            if steward not in stewards or steward in excluded:
                missing.append(f"approval by concerned steward '{steward}'")
    if policy.require_working_group_drift_signoff:
        group = [a for a in state.approvers("working_group") if a not in excluded]
        if not group:
            missing.append("a working-group sign-off on drift")
    return tuple(missing)


@dataclass
class _Fold:
    versions: dict[str, VersionState] = field(default_factory=dict)
    production: str | None = None
    promotions: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    attested: set[str] = field(default_factory=set)


def replay(
    entries: Sequence[LedgerEntry],
    facts: Mapping[str, VersionFacts],
    policy: DecisionPolicy,
    *,
    at: datetime | None = None,
) -> ChannelState:
    """The channel state after the entries recorded up to ``at`` (all when ``None``)."""
    cutoff = format_time(at) if at is not None else None
    fold = _Fold()
    head = 0
    for entry in entries:
        if cutoff is not None and entry.recorded_at > cutoff:
            break
        head = entry.seq
        _apply(fold, entry, facts, policy)
    staging = next((v for v in reversed(fold.order) if fold.versions[v].state in PENDING), None)
    return ChannelState(
        production=fold.production,
        staging=staging,
        versions=dict(fold.versions),
        head_seq=head,
        at=cutoff,
        promotions=tuple(fold.promotions),
    )


def _apply(
    fold: _Fold, entry: LedgerEntry, facts: Mapping[str, VersionFacts], policy: DecisionPolicy
) -> None:
    kind, version = entry.kind, entry.version
    if entry.role not in ALLOWED_ROLES.get(kind, frozenset()):
        return  # verify_ledger reports it; replay never lets it change state
    current = fold.versions.get(version)
    if kind == "gates-attested" and current is None:
        fold.attested.add(version)  # the pipeline attests gates just before it registers
        return
    if kind == "registered":
        if current is None:
            current = VersionState(
                version=version,
                state="registered",
                registered_seq=entry.seq,
                gates_attested=version in fold.attested,
            )
            current = replace(current, missing=missing_rules(current, facts.get(version), policy))
            fold.versions[version] = current
            fold.order.append(version)
        return
    if current is None:
        return  # a decision about a version never registered has no effect
    vote = Vote(entry.actor, entry.role, entry.seq, entry.recorded_at)
    version_facts = facts.get(version)
    if kind == "gates-attested":
        current = replace(current, gates_attested=True)
    elif kind == "approve" and current.state in PENDING:
        current = replace(current, approvals=(*current.approvals, vote))
        current = replace(current, state="under_review")
    elif kind == "veto" and _veto_counts(entry, version_facts):
        current = replace(current, vetoes=(*current.vetoes, vote))
        if current.state in PENDING:
            current = replace(current, state="vetoed")
    elif kind == "promote" and current.state in PENDING:
        if fold.production is not None and fold.production != version:
            previous = fold.versions[fold.production]
            fold.versions[fold.production] = replace(previous, state="superseded")
        fold.production = version
        fold.promotions.append(version)
        current = replace(current, state="promoted", promoted_seq=entry.seq, missing=())
    elif kind == "rollback" and current.state == "promoted":
        target = entry.target_version
        current = replace(
            current, state="rolled_back", rolled_back_seq=entry.seq, rollback_target=target
        )
        fold.production = None
        if target is not None and target in fold.versions:
            fold.versions[target] = replace(fold.versions[target], state="promoted")
            fold.production = target
            fold.promotions.append(target)
    if current.state in PENDING:
        missing = missing_rules(current, version_facts, policy)
        state: VersionStateName = (
            "approved"
            if not missing and not current.vetoes
            else ("registered" if not current.approvals else "under_review")
        )
        current = replace(current, missing=missing, state=state)
    fold.versions[version] = current


def _veto_counts(entry: LedgerEntry, facts: VersionFacts | None) -> bool:
    """Council vetoes always count; a steward's only when the footprint touches their region."""
    if entry.role == "council":
        return True
    return entry.role == "steward" and facts is not None and entry.actor in facts.concerned_stewards
