"""What replay produces: each version's state and the channel's, as frozen values.

A version moves through these states (:data:`VersionStateName`):

``registered`` → ``under_review`` (first approval) → ``approved`` (rules met) → ``promoted`` →
``superseded`` (another version promoted after it) — or ``vetoed`` (veto before promotion) or
``rolled_back`` (rollback while in production; production returns to the last good version).

:data:`PENDING` versions await decisions; :data:`SETTLED` versions take none any more. Who
submitted a version and which stewards it concerns are facts of its registry record
(:class:`VersionFacts`). :func:`core.decisions.replay.replay` builds a :class:`ChannelState`;
:mod:`core.decisions.rules` reads one to say who may act now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

VersionStateName = Literal[
    "registered", "under_review", "approved", "promoted", "vetoed", "rolled_back", "superseded"
]
PENDING: frozenset[str] = frozenset({"registered", "under_review", "approved"})
SETTLED: frozenset[str] = frozenset({"vetoed", "rolled_back", "superseded"})
PRODUCTION = "production"


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
