"""Signed decision records: approvals, vetoes, promotions, rollbacks and pipeline attestations.

A decision is a PROV activity (who, in which role, decided what, why, when, looking at which
evidence) about one model. It travels as a DSSE envelope (securesystemslib) whose payload is an
in-toto Statement v1 in RFC 8785 canonical JSON:

.. code-block:: json

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "<model>", "digest": {"sha256": "<root digest>"}},
                 {"name": "<model>/manifest", "digest": {"sha256": "<manifest digest>"}}],
     "predicateType": "https://kfm.example/decision/v1",
     "predicate": {"prov:type": "kfm:Decision", "decision": "approve", "actor": "alice",
                   "role": "council", "reason": "...", "time": "2026-11-01T12:00:00Z",
                   "version": "1.2.0", "channel": "production", "target_version": null,
                   "evidence": [{"name": "gates.json", "digest": {"sha256": "..."}}]}}

The envelope has one signature whose ``keyid`` is the fingerprint of the actor's public key
(:func:`core.signing.keys.key_fingerprint`). The same record always gives the same payload bytes; only
the ECDSA signature differs between signings.

Speed: the canonical bytes come from :func:`core.jsonio.canonical_json_bytes`, whose C-encoder
fast path covers every statement of this module (ASCII keys, strings, ``null`` and arrays).
Verification compares the payload once with the record's canonical bytes and takes the actor's
parsed key from :meth:`core.decisions.roster.TrustedRoster.dsse_key` (parsed once per key).

Public API (the ledger and the dashboard build on these):

- :class:`ModelSubject` ``(name, root_digest, manifest_digest)`` — e.g.
  ``ModelSubject.from_manifest(name, manifest)``.
- :class:`EvidenceRef` ``(name, sha256)`` — a file the decision looked at.
- :class:`DecisionRecord` — frozen: ``kind, actor, role, reason, time, subject, version,
  channel=None, target_version=None, evidence=()``; ``to_statement()``, ``from_statement()``,
  ``payload_bytes()``.
- :func:`sign_decision` ``(record, signer) -> Envelope`` — the signer's key must belong to
  ``record.actor`` (checked at verification against the roster).
- :func:`verify_decision` ``(envelope, roster, *, expected_subject=None) -> DecisionRecord`` —
  refuses a bad signature, a key not the actor's roster key, a role the roster does not grant,
  an expired or revoked key at the record's time, a non-canonical payload and (when given) a
  record about another model. Raises :class:`core.errors.VerificationError` or
  :class:`core.errors.AuthorizationError`.
- :func:`envelope_to_dict` / :func:`envelope_from_dict` ``(data, *, copy=True)`` /
  :func:`envelope_digest` — storage
  helpers; ``envelope_digest`` (hex SHA-256 over the canonical envelope JSON) is what a
  hash-chained ledger links.
- :data:`DECISION_KINDS`, :data:`DECISION_PREDICATE_TYPE`, :data:`IN_TOTO_PAYLOAD_TYPE`.

Which role may take which decision, quorums and stewards' binding vetoes are ledger policy,
not checked here: this module proves *who* signed *what* with *which granted role*.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from securesystemslib.dsse import Envelope

from core.decisions.roster import Role, TrustedRoster
from core.errors import VerificationError
from core.jsonio import canonical_json_bytes
from core.signing.digests import MANIFEST_SUBJECT_SUFFIX, ModelSubject
from core.signing.keys import KeySigner

DECISION_PREDICATE_TYPE = "https://kfm.example/decision/v1"
IN_TOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_REASON_CHARS = 4000
"""Longest reason a record may carry (about a page of text): a reason is read by people in the
ledger, the dashboard and ``kfm status``, and every reader re-verifies it, so a 20 MB reason
would be a denial of service, not an explanation."""

DecisionKind = Literal[
    "approve",
    "veto",
    "promote",
    "rollback",
    "gates-attested",
    "registered",
    "monitoring",
    "request-rollback",
]
DECISION_KINDS: tuple[str, ...] = get_args(DecisionKind)

_SOURCE = "decision envelope"
# Same test as core.signing.digests.is_sha256_hex (64 lowercase hex digits), as one regex match.
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _hex(value: str) -> str:
    if not _SHA256_HEX.fullmatch(value):
        raise ValueError(f"must be 64 lowercase hex digits, got {value!r}")
    return value


class EvidenceRef(BaseModel):
    """A file (or record) the decision looked at, by name and SHA-256."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        return _hex(value)


class DecisionRecord(BaseModel):
    """One signed decision about one model, as a PROV activity; immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DecisionKind
    actor: str = Field(min_length=1, description="Roster id of whoever decided")
    role: Role = Field(description="The role the actor acts in; the roster must grant it")
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)
    time: datetime = Field(description="When the decision was taken (timezone-aware)")
    subject: ModelSubject
    version: str = Field(min_length=1, description="Registry version of the model")
    channel: str | None = Field(default=None, description="e.g. 'production', 'staging'")
    target_version: str | None = Field(default=None, description="rollback target, if any")
    evidence: tuple[EvidenceRef, ...] = ()

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.utcoffset() is None:
            raise ValueError("time must carry a timezone, e.g. 2026-11-01T12:00:00Z")
        return value.astimezone(UTC)

    @field_validator("evidence")
    @classmethod
    def _sorted_evidence(cls, value: tuple[EvidenceRef, ...]) -> tuple[EvidenceRef, ...]:
        return tuple(sorted(value, key=lambda e: (e.name, e.sha256)))

    def to_predicate(self) -> dict[str, Any]:
        """The PROV activity recorded as the statement's predicate."""
        return {
            "prov:type": "kfm:Decision",
            "decision": self.kind,
            "actor": self.actor,
            "role": self.role,
            "reason": self.reason,
            "time": _format_time(self.time),
            "version": self.version,
            "channel": self.channel,
            "target_version": self.target_version,
            "evidence": [{"name": e.name, "digest": {"sha256": e.sha256}} for e in self.evidence],
        }

    def to_statement(self) -> dict[str, Any]:
        """The in-toto Statement v1 for this record."""
        return {
            "_type": IN_TOTO_STATEMENT_TYPE,
            "subject": self.subject.to_statement_subject(),
            "predicateType": DECISION_PREDICATE_TYPE,
            "predicate": self.to_predicate(),
        }

    def payload_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of :meth:`to_statement` (what is signed)."""
        return canonical_json_bytes(self.to_statement())

    @classmethod
    def from_statement(cls, statement: Mapping[str, Any]) -> DecisionRecord:
        """Parse an in-toto statement made by :meth:`to_statement`."""
        _expect(statement.get("_type"), IN_TOTO_STATEMENT_TYPE, "_type")
        _expect(statement.get("predicateType"), DECISION_PREDICATE_TYPE, "predicateType")
        subject = statement.get("subject")
        if not (isinstance(subject, list) and len(subject) == 2):
            raise VerificationError(
                "statement subject is malformed",
                file=_SOURCE,
                field="subject",
                expected="[model root digest, model manifest digest]",
                found=subject,
            )
        predicate = statement.get("predicate")
        if not isinstance(predicate, Mapping):
            raise VerificationError(
                "statement predicate is missing",
                file=_SOURCE,
                field="predicate",
                expected="object",
                found=predicate,
            )
        try:
            name = subject[0]["name"]
            _expect(subject[1]["name"], name + MANIFEST_SUBJECT_SUFFIX, "subject[1].name")
            _expect(predicate.get("prov:type"), "kfm:Decision", "predicate.prov:type")
            return cls(
                kind=predicate["decision"],
                actor=predicate["actor"],
                role=predicate["role"],
                reason=predicate["reason"],
                time=predicate["time"],
                subject=ModelSubject(
                    name=name,
                    root_digest=subject[0]["digest"]["sha256"],
                    manifest_digest=subject[1]["digest"]["sha256"],
                ),
                version=predicate["version"],
                channel=predicate.get("channel"),
                target_version=predicate.get("target_version"),
                evidence=tuple(
                    EvidenceRef(name=e["name"], sha256=e["digest"]["sha256"])
                    for e in predicate.get("evidence", [])
                ),
            )
        except (KeyError, TypeError) as error:
            raise VerificationError(
                "statement is missing a field",
                file=_SOURCE,
                field=f"predicate.{error}" if isinstance(error, KeyError) else "predicate",
                expected="a decision statement as documented in core/decisions/records.py",
                found=type(error).__name__,
            ) from error
        except ValidationError as error:
            first = error.errors()[0]
            raise VerificationError(
                "statement field is invalid: " + first["msg"],
                file=_SOURCE,
                field="predicate." + ".".join(str(p) for p in first["loc"]),
                expected="a valid decision record",
                found=first.get("input"),
            ) from error


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _expect(found: Any, expected: Any, field: str) -> None:
    if found != expected:
        raise VerificationError(
            f"unexpected {field}", file=_SOURCE, field=field, expected=expected, found=found
        )


def sign_decision(record: DecisionRecord, signer: KeySigner) -> Envelope:
    """A DSSE envelope over the canonical statement, signed by ``signer`` (the actor's key)."""
    envelope = Envelope(record.payload_bytes(), IN_TOTO_PAYLOAD_TYPE, {})
    envelope.sign(signer.dsse_signer())
    return envelope


def envelope_to_dict(envelope: Envelope) -> dict[str, Any]:
    """The envelope as JSON data (``payload``, ``payloadType``, ``signatures``)."""
    return envelope.to_dict()


def envelope_from_dict(data: Mapping[str, Any], *, copy: bool = True) -> Envelope:
    """Parse JSON data into an envelope (does not verify).

    securesystemslib rewrites the signature objects it is given, so ``data`` is deep-copied
    first; ``copy=False`` skips that for data the caller has just parsed and owns (a ledger row).
    """
    try:
        return Envelope.from_dict(json.loads(json.dumps(dict(data))) if copy else dict(data))
    except (KeyError, ValueError, TypeError) as error:
        raise VerificationError(
            "not a DSSE envelope",
            file=_SOURCE,
            field=str(error) or "signatures",
            expected="{payload, payloadType, signatures: [{keyid, sig}]}",
            found=type(error).__name__,
        ) from error


def envelope_digest(envelope: Envelope | Mapping[str, Any]) -> str:
    """Hex SHA-256 of the RFC 8785 canonical envelope JSON (for hash-chaining)."""
    data = envelope_to_dict(envelope) if isinstance(envelope, Envelope) else dict(envelope)
    return hashlib.sha256(canonical_json_bytes(data)).hexdigest()


def read_statement(envelope: Envelope | Mapping[str, Any]) -> DecisionRecord:
    """The record inside an envelope *without* verifying it (for display only)."""
    parsed = envelope if isinstance(envelope, Envelope) else envelope_from_dict(envelope)
    return DecisionRecord.from_statement(_load_payload(parsed))


def _load_payload(envelope: Envelope) -> dict[str, Any]:
    _expect(envelope.payload_type, IN_TOTO_PAYLOAD_TYPE, "payloadType")
    try:
        statement = json.loads(envelope.payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise VerificationError(
            "payload is not JSON",
            file=_SOURCE,
            field="payload",
            expected="an in-toto statement",
            found=base64.b64encode(envelope.payload[:32]).decode("ascii") + "...",
        ) from error
    if not isinstance(statement, dict):
        raise VerificationError(
            "payload is not a JSON object",
            file=_SOURCE,
            field="payload",
            expected="object",
            found=type(statement).__name__,
        )
    return statement


def verify_decision(
    envelope: Envelope | Mapping[str, Any],
    roster: TrustedRoster,
    *,
    expected_subject: ModelSubject | None = None,
) -> DecisionRecord:
    """The verified record; refuses anything the roster does not back (see module docstring)."""
    parsed = envelope if isinstance(envelope, Envelope) else envelope_from_dict(envelope)
    if len(parsed.signatures) != 1:
        raise VerificationError(
            "a decision carries exactly one signature",
            file=_SOURCE,
            field="signatures",
            expected=1,
            found=len(parsed.signatures),
        )
    record = DecisionRecord.from_statement(_load_payload(parsed))
    # One comparison proves both: the payload is canonical RFC 8785 (payload_bytes is) and it
    # is exactly this record (no extra, missing or reordered field, no other spelling).
    if record.payload_bytes() != parsed.payload:
        raise VerificationError(
            "payload is not the canonical form of its record",
            file=_SOURCE,
            field="payload",
            expected="RFC 8785 canonical statement",
            found="other bytes",
        )
    # Unknown actor, role not granted, key not valid or revoked at the record's time.
    entry = roster.authorize(record.actor, record.role, record.time)
    actor_key = roster.dsse_key(entry)
    (keyid,) = parsed.signatures
    if keyid != actor_key.keyid:
        raise VerificationError(
            f"signed by a key that is not the roster key of '{record.actor}'",
            file=_SOURCE,
            field="signatures[0].keyid",
            expected=actor_key.keyid,
            found=keyid,
        )
    try:
        parsed.verify([actor_key], 1)
    except Exception as error:  # noqa: BLE001 - securesystemslib raises several types
        raise VerificationError(
            f"signature does not verify with the roster key of '{record.actor}'",
            file=_SOURCE,
            field="signatures[0].sig",
            expected=f"a valid ECDSA P-256 signature by {actor_key.keyid}",
            found="an invalid signature (payload or signature edited)",
        ) from error
    if expected_subject is not None and record.subject != expected_subject:
        field = (
            "subject[0].digest.sha256"
            if record.subject.root_digest != expected_subject.root_digest
            else "subject[1].digest.sha256"
            if record.subject.manifest_digest != expected_subject.manifest_digest
            else "subject[0].name"
        )
        raise VerificationError(
            "decision is about another model",
            file=_SOURCE,
            field=field,
            expected=expected_subject.model_dump(),
            found=record.subject.model_dump(),
        )
    return record
