"""A reviewer's decision: built with the evidence the policy names, signed, then submitted.

Every place a person decides — ``kfm approve | veto | request-rollback | waive | resolve``, the
dashboard, the demo and the test fixtures — goes through this module, so every reviewer's
record has the same shape: the actor is the signer's key id, the channel is ``production``, the
time is to the second, the reason is not blank, the anchor is the head of the *verified* ledger
the record was built against, and the evidence is the SHA-256 of each file the policy's
``[decisions] evidence`` names, as the version's registry record holds it (a named file the
version does not hold is left out; a decision with no evidence at all is refused).

- :func:`prepare_decision` ``(kind, record, signer, *, role, reason, policy, time, anchor,
  gate=None) -> dict`` — the signed envelope (JSON data), without submitting it: it can be
  written to a file and submitted by anyone with
  :meth:`core.decisions.engine.DecisionEngine.submit` while its time is within the policy's
  clock skew.
- :func:`submit_decision` ``(engine, kind, version, signer, *, role, reason, gate=None)`` —
  prepares the envelope with the engine's registry record, policy, clock and verified head, and
  submits it; returns the :class:`core.decisions.engine.SubmitOutcome` (the entry appended and
  the promotion or rollback it caused, derived). No pipeline key is needed.
- :func:`decision_envelope` — the one place a decision record is built and signed; the two
  above call it, and :func:`core.testing.signed_decision` calls it for records of any shape.
- :func:`decision_evidence`, :func:`check_reason` — the two checks, for callers that want to
  fail before asking for a passphrase.

Whether the engine accepts the decision is :mod:`core.decisions.rules`' question, not this
module's: :meth:`DecisionEngine.allowed_actions` says beforehand what it will accept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core.decisions.engine import DecisionEngine, SubmitOutcome
from core.decisions.records import (
    MAX_REASON_CHARS,
    Anchor,
    DecisionRecord,
    EvidenceRef,
    envelope_to_dict,
    sign_decision,
)
from core.decisions.state import PRODUCTION
from core.errors import AuthorizationError
from core.policy import DecisionPolicy
from core.registry.versions import VersionRecord
from core.signing.digests import ModelSubject
from core.signing.keys import KeySigner


def decision_envelope(
    signer: KeySigner,
    *,
    kind: str,
    role: str,
    version: str,
    subject: ModelSubject,
    reason: str,
    time: datetime,
    anchor: Anchor,
    evidence: Sequence[EvidenceRef] = (),
    target_version: str | None = None,
    gate: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A decision record by ``signer`` (actor = its key id) on ``production``, signed, as JSON.

    ``fields`` are further record fields (``facts``, ``breaches``...) for records of any shape.
    """
    record = DecisionRecord(
        kind=kind,  # type: ignore[arg-type]  # validated by pydantic
        actor=signer.key_id,
        role=role,  # type: ignore[arg-type]  # validated by pydantic
        reason=reason,
        time=time,
        subject=subject,
        version=version,
        channel=PRODUCTION,
        target_version=target_version,
        evidence=tuple(evidence),
        anchor=anchor,
        gate=gate,
        **fields,
    )
    return envelope_to_dict(sign_decision(record, signer))


def check_reason(reason: str, *, field: str = "reason") -> str:
    """The reason without surrounding blanks; a blank or too long reason is refused.

    ``field`` names where it came from (``--reason``); the limit is
    :data:`core.decisions.records.MAX_REASON_CHARS` characters.
    """
    text = reason.strip()
    if not text:
        raise AuthorizationError(
            "a decision needs a reason", field=field, expected="text", found=repr(reason)
        )
    if len(text) > MAX_REASON_CHARS:
        raise AuthorizationError(
            "reason is too long",
            field=field,
            expected=f"at most {MAX_REASON_CHARS} characters",
            found=f"{len(text)} characters",
            hint="keep the reason to what a reviewer should read; link longer evidence",
        )
    return text


def decision_evidence(record: VersionRecord, names: Sequence[str]) -> tuple[EvidenceRef, ...]:
    """The SHA-256 of each file of ``names`` that the version holds, from its registry record."""
    stored = record.manifest.by_name()
    evidence = tuple(
        EvidenceRef(name=name, sha256=stored[name].sha256) for name in names if name in stored
    )
    if not evidence:
        raise AuthorizationError(
            "the version holds none of the files a decision must record as evidence",
            file=f"climate/models/{record.version}",
            field="decisions.evidence",
            expected=list(names),
            found=sorted(stored),
        )
    return evidence


def prepare_decision(
    kind: str,
    record: VersionRecord,
    signer: KeySigner,
    *,
    role: str,
    reason: str,
    policy: DecisionPolicy,
    time: datetime,
    anchor: Anchor,
    gate: str | None = None,
) -> dict[str, Any]:
    """The signed envelope of ``signer``'s decision on ``record``'s version (not submitted).

    ``anchor`` is the head of the verified ledger the signer looked at; ``gate`` the failing
    gate a ``waive`` names.
    """
    return decision_envelope(
        signer,
        kind=kind,
        role=role,
        version=record.version,
        subject=record.subject,
        reason=check_reason(reason),
        time=time.replace(microsecond=0),
        anchor=anchor,
        evidence=decision_evidence(record, policy.evidence),
        gate=gate,
    )


def submit_decision(
    engine: DecisionEngine,
    kind: str,
    version: str,
    signer: KeySigner,
    *,
    role: str,
    reason: str,
    gate: str | None = None,
) -> SubmitOutcome:
    """Prepare ``signer``'s decision on ``version`` against the verified head and submit it."""
    state = engine.state()
    envelope = prepare_decision(
        kind,
        engine.version_record(version),
        signer,
        role=role,
        reason=reason,
        policy=engine.policy,
        time=engine.now(),
        anchor=state.anchor,
        gate=gate,
    )
    return engine.submit(envelope)
