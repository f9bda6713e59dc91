"""Channel state as a pure replay of the ledger.

:func:`replay` folds ledger entries (in ``seq`` order, optionally only those recorded up to a
time) into a :class:`core.decisions.state.ChannelState`: which version is in ``production``,
which is in ``staging`` (the newest version still awaiting decisions), and each version's state
(the states and their order are described in :mod:`core.decisions.state`).

What counts comes from :mod:`core.decisions.rules`: the roles that may sign each kind
(:data:`~core.decisions.rules.ALLOWED_ROLES`), which vetoes count
(:func:`~core.decisions.rules.veto_counts`) and what a version still needs
(:func:`~core.decisions.rules.missing_rules`, from the policy's ``[decisions]`` table). Who
submitted a version and which stewards it concerns are facts of its registry record
(:class:`core.decisions.state.VersionFacts`), bound to the ledger by the ``registered`` record's
evidence digest.

Replay reads the row fields only (no signature checks): verification is
:func:`core.decisions.verify.verify_ledger`'s job, so replaying 10,000 entries stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.decisions.ledger import LedgerEntry, format_time
from core.decisions.rules import ALLOWED_ROLES, missing_rules, veto_counts
from core.decisions.state import (
    PENDING,
    ChannelState,
    VersionFacts,
    VersionState,
    VersionStateName,
    Vote,
)
from core.policy import DecisionPolicy


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
    elif kind == "veto" and veto_counts(entry.role, entry.actor, version_facts):
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
