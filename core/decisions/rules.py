"""Who may do what, and what a version still needs: every decision rule, in one place.

The verified replay (:mod:`core.decisions.verify`, on every entry), the engine
(:meth:`core.decisions.engine.DecisionEngine.submit`, before it appends), the command line and
the dashboard all ask this module; none of them keeps a rule of its own, so what the dashboard
offers is exactly what the engine accepts and exactly what verification lets count.

- :data:`ALLOWED_ROLES` — which roster roles may sign which kind of record.
- :data:`REVIEWER_ACTIONS` — what a person submits (``approve``, ``veto``,
  ``request-rollback``, ``waive``, ``resolve``); every other kind is a pipeline record.
- :func:`veto_counts` — a council veto always counts; a steward's only when the version's
  footprint touches their region (the steward is *concerned*).
- :func:`missing_rules` — what a version still needs before promotion, from the rules signed in
  its facts (:class:`core.decisions.records.PromotionRules`): gates attested, ``council_quorum``
  distinct council approvals, every concerned steward, a working-group sign-off on drift when
  required, the submitter's own approvals not counted, every failing gate waived by
  ``council_quorum`` distinct council members, and no open monitoring breach.
- :func:`refusal` — the error that refuses a person taking an action in a role on a version
  now, or ``None``: the role may take the kind; no self-approval or self-waiver; a steward
  vetoes or asks for a rollback only of a version that concerns them; one approval, veto and
  waiver per person (and role, and gate); an approval or waiver only of a version awaiting
  decisions; a veto only of a version not yet settled; a rollback request only of the version
  in production; a ``resolve`` only of a version with an open breach the signer saw (and not
  vetoed or rolled back).
- :func:`pipeline_refusal` — the same for pipeline records, rechecked at verification: a
  version is registered and attested once; monitoring only of a registered version; an
  automatic rollback only of the version in production, justified by one of its open breaches,
  to exactly the last good version at that point (``None``: production left empty).
- :func:`allowed_actions` / :func:`waivable_gates` — what :func:`refusal` lets an actor take now,
  in the roles the roster grants them at that time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from core.decisions.records import Anchor, DecisionRecord, VersionFacts
from core.decisions.roster import TrustedRoster
from core.decisions.state import PENDING, SETTLED, ChannelState, VersionState
from core.errors import AuthorizationError, KfmError, LedgerError

# Which roster roles may sign which kind of decision record.
ALLOWED_ROLES: Mapping[str, frozenset[str]] = {
    "approve": frozenset({"council", "steward", "working_group"}),
    "veto": frozenset({"council", "steward"}),
    "request-rollback": frozenset({"council", "steward", "working_group"}),
    "waive": frozenset({"council"}),
    "resolve": frozenset({"working_group"}),
    "monitoring": frozenset({"pipeline"}),
    "rollback": frozenset({"pipeline"}),
    "gates-attested": frozenset({"pipeline"}),
    "registered": frozenset({"pipeline"}),
}
# What a person submits, in the order a form offers them.
REVIEWER_ACTIONS: tuple[str, ...] = ("approve", "veto", "request-rollback", "waive", "resolve")


def veto_counts(role: str, actor: str, facts: VersionFacts | None) -> bool:
    """Council vetoes always count; a steward's only when the footprint touches their region."""
    if role == "council":
        return True
    return role == "steward" and facts is not None and actor in facts.concerned_stewards


def _own(actor: str, facts: VersionFacts) -> bool:
    """Whether ``actor`` submitted the version and the rules forbid deciding on one's own."""
    return facts.rules.forbid_self_approval and actor == facts.submitter


def missing_rules(state: VersionState, facts: VersionFacts) -> tuple[str, ...]:
    """Human-readable rules ``state`` does not meet yet (empty: it is promoted)."""
    rules = facts.rules
    missing: list[str] = []
    if not state.gates_attested:
        missing.append("a gates-attested record from the pipeline")
    council = [a for a in state.approvers("council") if not _own(a, facts)]
    if len(council) < rules.council_quorum:
        missing.append(
            f"{rules.council_quorum - len(council)} more council approval(s) "
            f"(have {len(council)} of {rules.council_quorum})"
        )
    if rules.require_concerned_stewards:
        stewards = set(state.approvers("steward"))
        for steward in facts.concerned_stewards:
            if steward not in stewards or _own(steward, facts):
                missing.append(f"approval by concerned steward '{steward}'")
    group = [a for a in state.approvers("working_group") if not _own(a, facts)]
    if rules.require_working_group_drift_signoff and not group:
        missing.append("a working-group sign-off on drift")
    for gate in state.gates_failed:
        waived = [a for a in state.waivers_of(gate) if not _own(a, facts)]
        if len(waived) < rules.council_quorum:
            missing.append(
                f"gate '{gate}' failed and is not waived "
                f"({len(waived)} of {rules.council_quorum} council waivers)"
            )
    for breach in state.breaches:
        missing.append(
            f"open {breach.kind} breach (monitoring run at entry #{breach.seq}): a later "
            "in-bounds run or a working-group resolve closes it"
        )
    return tuple(missing)


def refusal(
    kind: str,
    role: str,
    actor: str,
    version: str,
    *,
    state: ChannelState,
    facts: VersionFacts | None,
    gate: str | None = None,
    anchor: Anchor | None = None,
) -> KfmError | None:
    """Why ``actor`` may not take ``kind`` in ``role`` on ``version`` now; ``None`` if they may.

    ``facts`` is ``None`` when the version is not registered. ``gate`` is the gate a ``waive``
    names; ``anchor`` the ledger head the record says its signer saw (``None``: now). The
    roster's own checks (the actor holds ``role`` with a valid, unrevoked key) are
    :meth:`core.decisions.roster.TrustedRoster.authorize`'s, made before this.
    """
    if kind not in REVIEWER_ACTIONS:
        return AuthorizationError(
            f"'{kind}' records are appended by the pipeline, not submitted by a person",
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
    current = state.versions.get(version)
    if current is None or facts is None:
        return LedgerError(
            "version has no registered record in the ledger",
            field="version",
            expected="a version registered by `kfm deploy`",
            found=version,
        )
    said = current.state.replace("_", " ")
    if kind in ("approve", "waive") and _own(actor, facts):
        return AuthorizationError(
            f"self-{'approval' if kind == 'approve' else 'waiver'} is forbidden: the submitter "
            "may not decide on their own model",
            field="predicate.actor",
            expected=f"a reviewer other than '{facts.submitter}'",
            found=actor,
        )
    steward_act = kind in ("veto", "request-rollback") and role == "steward"
    if steward_act and not veto_counts(role, actor, facts):
        return AuthorizationError(
            f"steward '{actor}' is not concerned by this model's footprint",
            field="predicate.actor",
            expected=list(facts.concerned_stewards) or "no steward (none concerned)",
            found=actor,
        )
    if kind in ("approve", "waive") and current.state not in PENDING:
        return LedgerError(
            f"version {version} is {said}; there is nothing to {kind}",
            field="version",
            expected="a version awaiting decisions",
            found=current.state,
        )
    if kind == "approve" and any(v.actor == actor and v.role == role for v in current.approvals):
        return AuthorizationError(
            f"'{actor}' already approved {version} as {role}",
            field="predicate.actor",
            expected="one approval per reviewer and role",
            found="a second approval",
        )
    if kind == "veto":
        if any(v.actor == actor and v.role == role for v in current.vetoes):
            return AuthorizationError(
                f"'{actor}' already vetoed {version} as {role}",
                field="predicate.actor",
                expected="one veto per reviewer and role",
                found="a second veto",
            )
        if current.state in SETTLED:
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
    if kind == "waive":
        return _waiver_refusal(actor, version, current, gate)
    if kind == "resolve":
        return _resolve_refusal(version, current, anchor)
    return None


def _waiver_refusal(
    actor: str, version: str, current: VersionState, gate: str | None
) -> KfmError | None:
    if gate is None or gate not in current.gates_failed:
        return LedgerError(
            f"gate {gate!r} did not fail for {version}; only a failing gate can be waived",
            field="predicate.gate",
            expected=list(current.gates_failed) or "no failing gate",
            found=gate,
        )
    if actor in current.waivers_of(gate):
        return AuthorizationError(
            f"'{actor}' already waived gate '{gate}' of {version}",
            field="predicate.actor",
            expected="one waiver per council member and gate",
            found="a second waiver",
        )
    return None


def _resolve_refusal(version: str, current: VersionState, anchor: Anchor | None) -> KfmError | None:
    if current.state in ("vetoed", "rolled_back"):
        return LedgerError(
            f"version {version} is {current.state.replace('_', ' ')}; there is nothing to resolve",
            field="version",
            expected="a version awaiting decisions, in production or superseded",
            found=current.state,
        )
    if not current.breaches:
        return LedgerError(
            f"version {version} has no open breach to resolve",
            field="version",
            expected="a version with an open monitoring breach",
            found="no open breach",
        )
    newest = max(b.seq for b in current.breaches)
    if anchor is not None and anchor.seq < newest:
        return AuthorizationError(
            "a resolve must be signed after the breach it closes: the signer did not see it",
            field="predicate.anchor.seq",
            expected=f"an anchor at or after entry #{newest}",
            found=anchor.seq,
        )
    return None


def pipeline_refusal(record: DecisionRecord, *, state: ChannelState) -> KfmError | None:
    """Why the pipeline record ``record`` may not be appended now; ``None`` if it may."""
    version = record.version
    current = state.versions.get(version)
    if record.role not in ALLOWED_ROLES.get(record.kind, frozenset()):
        return AuthorizationError(
            f"role '{record.role}' may not sign '{record.kind}'",
            field="predicate.role",
            expected=sorted(ALLOWED_ROLES.get(record.kind, frozenset())),
            found=record.role,
        )
    if record.kind == "registered":
        if current is not None:
            return LedgerError(
                "version is already registered in the ledger",
                field="version",
                expected="a new version",
                found=version,
            )
        return None
    if current is None:
        return LedgerError(
            f"a '{record.kind}' record about a version the ledger never registered",
            field="version",
            expected="a registered version",
            found=version,
        )
    if record.kind == "gates-attested" and current.gates_attested:
        return LedgerError(
            "the gates of this version are already attested",
            field="predicate.decision",
            expected="one gates-attested record per version",
            found="a second one",
        )
    if record.kind == "rollback":
        return rollback_refusal(
            version, record.breaches, record.target_version, state=state, current=current
        )
    return None


def rollback_refusal(
    version: str,
    breaches: Sequence[str],
    target: str | None,
    *,
    state: ChannelState,
    current: VersionState,
) -> KfmError | None:
    """Why an automatic rollback of ``version`` to ``target`` for ``breaches`` is not justified."""
    if state.production != version:
        return LedgerError(
            "nothing to roll back: the version is not in production",
            field="version",
            expected=f"the production version ({state.production or 'none'})",
            found=version,
        )
    open_kinds = {b.kind for b in current.breaches}
    if not breaches or not set(breaches) <= open_kinds:
        return LedgerError(
            "an automatic rollback must be justified by an open breach of the version",
            field="predicate.breaches",
            expected=sorted(open_kinds) or "an open breach (none is open)",
            found=list(breaches),
        )
    good = state.last_good_version(excluding=version)
    if target != good:
        return LedgerError(
            "a rollback goes to the last good version (none: production left empty)",
            field="predicate.target_version",
            expected=good or "null (production left empty)",
            found=target,
        )
    return None


def allowed_actions(
    actor: str,
    version: str,
    *,
    state: ChannelState,
    facts: VersionFacts | None,
    roster: TrustedRoster,
    at: datetime,
) -> list[tuple[str, str]]:
    """The ``(action, role)`` pairs ``actor`` may take on ``version`` at ``at``, in form order.

    An action is offered exactly when the engine would accept it: the roster grants the role
    to a valid, unrevoked key at ``at`` and :func:`refusal` finds nothing against it (for
    ``waive``: against at least one failing gate, see :func:`waivable_gates`).
    """
    entry = roster.entry(actor)
    if entry is None:
        return []
    roles: list[str] = []
    for granted in entry.roles:
        try:
            roster.authorize(actor, granted, at)
        except AuthorizationError:
            continue
        roles.append(granted)
    current = state.versions.get(version)
    gates = current.gates_failed if current is not None else ()
    out: list[tuple[str, str]] = []
    for kind in REVIEWER_ACTIONS:
        for role in roles:
            tries: tuple[str | None, ...] = gates if kind == "waive" else (None,)
            if any(
                refusal(kind, role, actor, version, state=state, facts=facts, gate=g) is None
                for g in tries
            ):
                out.append((kind, role))
    return out


def waivable_gates(
    actor: str, version: str, *, state: ChannelState, facts: VersionFacts | None
) -> list[str]:
    """The failing gates of ``version`` that ``actor`` may waive now (as council)."""
    current = state.versions.get(version)
    if current is None:
        return []
    return [
        gate
        for gate in current.gates_failed
        if refusal("waive", "council", actor, version, state=state, facts=facts, gate=gate) is None
    ]
