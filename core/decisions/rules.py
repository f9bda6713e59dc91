"""Who may do what, and what a version still needs: every decision rule, in one place.

The engine (:meth:`core.decisions.engine.DecisionEngine.submit`), the replay, the ledger
verification, the command line and the dashboard all ask this module; none of them keeps a rule
of its own, so what the dashboard offers is exactly what the engine accepts.

- :data:`ALLOWED_ROLES` — which roster roles may sign which kind of record.
- :data:`REVIEWER_ACTIONS` — what a person submits (``approve``, ``veto``,
  ``request-rollback``); every other kind is appended by the engine with the pipeline key.
- :func:`veto_counts` — a council veto always counts; a steward's only when the version's
  footprint touches their region (the steward is *concerned*).
- :func:`missing_rules` — what a version still needs before promotion, from the policy's
  ``[decisions]`` table (:class:`core.policy.DecisionPolicy`): ``council_quorum`` distinct
  council approvals, every concerned steward (``require_concerned_stewards``), a working-group
  sign-off on drift (``require_working_group_drift_signoff``), the submitter's own approvals not
  counted (``forbid_self_approval``).
- :func:`refusal` — the error that refuses an actor taking an action in a role on a version
  now, or ``None``: the role may take the kind; no self-approval; a steward vetoes only a version
  that concerns them; the version is registered; one approves only a version awaiting
  decisions, once per person and role; a veto only of a version not yet settled; a rollback
  request only of the version in production (a request is not a vote: an approver may ask).
- :func:`allowed_actions` — the ``(action, role)`` pairs :func:`refusal` lets an actor take
  now, in the roles the roster grants them at that time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from core.decisions.roster import TrustedRoster
from core.decisions.state import (
    PENDING,
    SETTLED,
    ChannelState,
    VersionFacts,
    VersionState,
)
from core.errors import AuthorizationError, KfmError, LedgerError
from core.policy import DecisionPolicy

# Which roster roles may sign which kind of decision record.
ALLOWED_ROLES: Mapping[str, frozenset[str]] = {
    "approve": frozenset({"council", "steward", "working_group"}),
    "veto": frozenset({"council", "steward"}),
    "request-rollback": frozenset({"council", "steward", "working_group"}),
    "monitoring": frozenset({"pipeline"}),
    "promote": frozenset({"pipeline"}),
    "rollback": frozenset({"pipeline"}),
    "gates-attested": frozenset({"pipeline"}),
    "registered": frozenset({"pipeline"}),
}
# What a person submits, in the order a form offers them.
REVIEWER_ACTIONS: tuple[str, ...] = ("approve", "veto", "request-rollback")


def veto_counts(role: str, actor: str, facts: VersionFacts | None) -> bool:
    """Council vetoes always count; a steward's only when the footprint touches their region."""
    if role == "council":
        return True
    return role == "steward" and facts is not None and actor in facts.concerned_stewards


def _self_approval(actor: str, facts: VersionFacts, policy: DecisionPolicy) -> bool:
    return policy.forbid_self_approval and actor == facts.submitter


def missing_rules(
    state: VersionState, facts: VersionFacts | None, policy: DecisionPolicy
) -> tuple[str, ...]:
    """Human-readable rules ``state`` does not meet yet (empty: it may be promoted)."""
    missing: list[str] = []
    if facts is None:
        return ("a registry record for this version",)
    if not state.gates_attested:
        missing.append("a gates-attested record from the pipeline")
    council = [a for a in state.approvers("council") if not _self_approval(a, facts, policy)]
    if len(council) < policy.council_quorum:
        missing.append(
            f"{policy.council_quorum - len(council)} more council approval(s) "
            f"(have {len(council)} of {policy.council_quorum})"
        )
    if policy.require_concerned_stewards:
        stewards = set(state.approvers("steward"))
        for steward in facts.concerned_stewards:
            if steward not in stewards or _self_approval(steward, facts, policy):
                missing.append(f"approval by concerned steward '{steward}'")
    if policy.require_working_group_drift_signoff:
        group = [
            a for a in state.approvers("working_group") if not _self_approval(a, facts, policy)
        ]
        if not group:
            missing.append("a working-group sign-off on drift")
    return tuple(missing)


def refusal(
    kind: str,
    role: str,
    actor: str,
    version: str,
    *,
    state: ChannelState,
    facts: VersionFacts,
    policy: DecisionPolicy,
) -> KfmError | None:
    """Why ``actor`` may not take ``kind`` in ``role`` on ``version`` now; ``None`` if they may.

    The roster's own checks (the actor holds ``role`` with a valid, unrevoked key) are
    :meth:`core.decisions.roster.TrustedRoster.authorize`'s, made before this.
    """
    if kind not in REVIEWER_ACTIONS:
        return AuthorizationError(
            f"'{kind}' records are appended by the engine, not submitted",
            field="predicate.decision",
            expected=list(REVIEWER_ACTIONS),
            found=kind,
        )
    if role not in ALLOWED_ROLES[kind]:
        return AuthorizationError(
            f"role '{role}' may not {kind}",
            field="predicate.role",
            expected=sorted(ALLOWED_ROLES[kind]),
            found=role,
        )
    if kind == "approve" and _self_approval(actor, facts, policy):
        return AuthorizationError(
            "self-approval is forbidden: the submitter may not approve their own model",
            field="predicate.actor",
            expected=f"a reviewer other than '{facts.submitter}'",
            found=actor,
        )
    if kind == "veto" and not veto_counts(role, actor, facts):
        return AuthorizationError(
            f"steward '{actor}' is not concerned by this model's footprint",
            field="predicate.actor",
            expected=list(facts.concerned_stewards) or "no steward (none concerned)",
            found=actor,
        )
    current = state.versions.get(version)
    if current is None:
        return LedgerError(
            "version has no registered record in the ledger",
            field="version",
            expected="a version registered by `kfm deploy`",
            found=version,
        )
    said = current.state.replace("_", " ")
    if kind == "approve":
        if current.state not in PENDING:
            return LedgerError(
                f"version {version} is {said}; there is nothing to approve",
                field="version",
                expected="a version awaiting decisions",
                found=current.state,
            )
        if any(v.actor == actor and v.role == role for v in current.approvals):
            return AuthorizationError(
                f"'{actor}' already approved {version} as {role}",
                field="predicate.actor",
                expected="one approval per reviewer and role",
                found="a second approval",
            )
    if kind == "veto" and current.state in SETTLED:
        return LedgerError(
            f"version {version} is {said}; there is nothing to veto",
            field="version",
            expected="a version awaiting decisions or in production",
            found=current.state,
        )
    if kind == "request-rollback" and state.production != version:
        return LedgerError(
            f"version {version} is not in production; only production can be rolled back",
            field="version",
            expected=f"the production version ({state.production or 'none'})",
            found=f"{version} ({said})",
        )
    return None


def allowed_actions(
    actor: str,
    version: str,
    *,
    state: ChannelState,
    facts: VersionFacts,
    roster: TrustedRoster,
    policy: DecisionPolicy,
    at: datetime,
) -> list[tuple[str, str]]:
    """The ``(action, role)`` pairs ``actor`` may take on ``version`` at ``at``, in form order.

    An action is offered exactly when the engine would accept it: the roster grants the role
    to a valid, unrevoked key at ``at`` and :func:`refusal` finds nothing against it.
    """
    entry = roster.entry(actor)
    if entry is None:
        return []
    roles = []
    for role in entry.roles:
        try:
            roster.authorize(actor, role, at)
        except AuthorizationError:
            continue
        roles.append(role)
    return [
        (kind, role)
        for kind in REVIEWER_ACTIONS
        for role in roles
        if refusal(kind, role, actor, version, state=state, facts=facts, policy=policy) is None
    ]
