"""Signed decision records: approvals, vetoes, waivers, rollbacks and pipeline attestations.

A decision is a PROV activity (who, in which role, decided what, why, when, looking at which
evidence) about one model. It travels as a DSSE envelope (securesystemslib) whose payload is an
in-toto Statement v1 in RFC 8785 canonical JSON:

.. code-block:: json

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "<model>", "digest": {"sha256": "<root digest>"}},
                 {"name": "<model>/manifest", "digest": {"sha256": "<manifest digest>"}}],
     "predicateType": "https://kfm.example/decision/v2",
     "predicate": {"prov:type": "kfm:Decision", "decision": "approve", "actor": "alice",
                   "role": "council", "reason": "...", "time": "2026-11-01T12:00:00Z",
                   "version": "1.2.0", "channel": "production", "target_version": null,
                   "evidence": [{"name": "gates.json", "digest": {"sha256": "..."}}],
                   "anchor": {"seq": 7, "entry_hash": "<hash of ledger entry 7>"},
                   "roster_serial": null, "facts": null, "gates_failed": [],
                   "breaches": [], "gate": null}}

Format 2 adds the last six fields, always present in the signed statement (``null`` or ``[]``
when unused):

- ``anchor`` — the ledger head the signer saw (:class:`Anchor`; seq 0 and :data:`GENESIS` for
  an empty ledger). It binds the record to its place in the chain: deleting, reordering or
  rewriting an earlier entry breaks the anchor of every later record whose signer saw it.
- ``roster_serial`` — the serial of the roster a pipeline record was made against.
- ``facts`` (``registered`` only) — the version's :class:`VersionFacts`: submitter, concerned
  stewards, model family, footprint, the registry record's digest and the promotion rules
  (:class:`PromotionRules`) the version is decided under. Replay reads these, never registry
  rows.
- ``gates_failed`` (``gates-attested`` only) — the gates that failed (empty: every gate passed).
- ``breaches`` — on ``monitoring``, the :data:`BREACH_KINDS` the run breached (empty: in
  bounds); on an automatic ``rollback``, the open breaches that justify it (never empty).
- ``gate`` (``waive`` only) — the failing gate a council member waives.

A format-1 statement (``.../decision/v1``) is refused with a message saying the workspace
predates format 2.

The envelope has one signature whose ``keyid`` is the fingerprint of the actor's public key
(:func:`core.signing.keys.key_fingerprint`). The same record always gives the same payload bytes; only
the ECDSA signature differs between signings.

Speed: the canonical bytes come from :func:`core.jsonio.canonical_json_bytes`, whose C-encoder
fast path covers every statement of this module (ASCII keys, strings, ``null``, safe integers
and arrays) except a ``registered`` record whose footprint has fractional degrees (whole numbers
are written as integers, the same RFC 8785 bytes), which goes to ``rfc8785``.
Verification compares the payload once with the record's canonical bytes and takes the actor's
parsed key from :meth:`core.decisions.roster.TrustedRoster.dsse_key` (parsed once per key).

Public API (the ledger and the dashboard build on these):

- :class:`ModelSubject` ``(name, root_digest, manifest_digest)`` — e.g.
  ``ModelSubject.from_manifest(name, manifest)``.
- :class:`EvidenceRef` ``(name, sha256)`` — a file the decision looked at.
- :class:`DecisionRecord` — frozen: ``kind, actor, role, reason, time, subject, version,
  anchor, channel=None, target_version=None, evidence=(), roster_serial=None, facts=None,
  gates_failed=(), breaches=(), gate=None``; ``to_statement()``, ``from_statement()``,
  ``payload_bytes()``.
- :class:`Anchor` ``(seq, entry_hash)``, :class:`VersionFacts`, :class:`PromotionRules`.
- :func:`sign_decision` ``(record, signer) -> Envelope`` — the signer's key must belong to
  ``record.actor`` (checked at verification against the roster).
- :func:`verify_decision` ``(envelope, roster, *, at, expected_subject=None) -> DecisionRecord``
  — refuses a bad signature, a key not the actor's roster key, a role the roster does not grant,
  an expired or revoked key at ``at`` (the time the ledger records it, never the record's own
  claimed time, which a signer chooses), a non-canonical payload and (when given) a record
  about another model. Raises :class:`core.errors.VerificationError` or
  :class:`core.errors.AuthorizationError`.
- :func:`envelope_to_dict` / :func:`envelope_from_dict` ``(data, *, copy=True)`` /
  :func:`envelope_digest` — storage
  helpers; ``envelope_digest`` (hex SHA-256 over the canonical envelope JSON) is what a
  hash-chained ledger links.
- :data:`DECISION_KINDS`, :data:`HUMAN_KINDS`, :data:`PIPELINE_KINDS`, :data:`BREACH_KINDS`,
  :data:`DECISION_PREDICATE_TYPE`, :data:`IN_TOTO_PAYLOAD_TYPE`, :data:`GENESIS`.

Which role may take which decision, quorums and stewards' binding vetoes are ledger policy,
not checked here: this module proves *who* signed *what* with *which granted role*. A promotion
is never a record: it is derived by the verified replay (:mod:`core.decisions.verify`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationError,
    field_validator,
    model_validator,
)
from securesystemslib.dsse import Envelope

from core.decisions.roster import Role, TrustedRoster
from core.errors import VerificationError
from core.jsonio import canonical_json_bytes
from core.policy import DecisionPolicy
from core.signing.digests import MANIFEST_SUBJECT_SUFFIX, ModelSubject
from core.signing.keys import KeySigner

DECISION_PREDICATE_TYPE = "https://kfm.example/decision/v2"
FORMAT_1_PREDICATE_TYPE = "https://kfm.example/decision/v1"
IN_TOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_REASON_CHARS = 4000
"""Longest reason a record may carry (about a page of text): a reason is read by people in the
ledger, the dashboard and ``kfm status``, and every reader re-verifies it, so a 20 MB reason
would be a denial of service, not an explanation."""
GENESIS = "0" * 64
"""The hash an empty ledger's head has (the first entry's ``prev_hash``, anchor seq 0)."""

DecisionKind = Literal[
    "approve",
    "veto",
    "request-rollback",
    "waive",
    "resolve",
    "gates-attested",
    "registered",
    "monitoring",
    "rollback",
]
DECISION_KINDS: tuple[str, ...] = get_args(DecisionKind)
HUMAN_KINDS: tuple[str, ...] = ("approve", "veto", "request-rollback", "waive", "resolve")
PIPELINE_KINDS: tuple[str, ...] = ("gates-attested", "registered", "monitoring", "rollback")
BreachKind = Literal["drift", "telemetry", "validation", "sovereignty"]
BREACH_KINDS: tuple[str, ...] = get_args(BreachKind)

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


class Anchor(BaseModel):
    """The ledger head a signer saw: its ``seq`` (0 for an empty ledger) and ``entry_hash``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=0)
    entry_hash: str

    @field_validator("entry_hash")
    @classmethod
    def _digest(cls, value: str) -> str:
        return _hex(value)

    @model_validator(mode="after")
    def _genesis(self) -> Anchor:
        if (self.seq == 0) != (self.entry_hash == GENESIS):
            raise ValueError("anchor seq 0 (an empty ledger) goes with the GENESIS hash only")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "entry_hash": self.entry_hash}


class PromotionRules(BaseModel):
    """The rules a version is decided under, fixed when it is registered (signed in its facts).

    Taken from the policy's ``[decisions]`` table at deploy time. Binding them into the signed
    ``registered`` record means editing ``policy.toml`` later cannot change whether a version
    already registered was promoted (nor lower a quorum for it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    council_quorum: int = Field(ge=1)
    require_concerned_stewards: bool
    require_working_group_drift_signoff: bool
    forbid_self_approval: bool

    @classmethod
    def from_policy(cls, policy: DecisionPolicy) -> PromotionRules:
        return cls(
            council_quorum=policy.council_quorum,
            require_concerned_stewards=policy.require_concerned_stewards,
            require_working_group_drift_signoff=policy.require_working_group_drift_signoff,
            forbid_self_approval=policy.forbid_self_approval,
        )


class VersionFacts(BaseModel):
    """What the rules need to know about a version, signed in its ``registered`` record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    submitter: str = Field(min_length=1, description="Roster id of who submitted the candidate")
    concerned_stewards: tuple[str, ...] = Field(
        description="Roster ids of the stewards whose regions the footprint touches"
    )
    model_family: str = Field(min_length=1)
    footprint: tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat] = Field(
        description="west, south, east, north (degrees) of what the model covers"
    )
    record_sha256: str = Field(description="SHA-256 of the registry version record")
    rules: PromotionRules

    @field_validator("concerned_stewards")
    @classmethod
    def _sorted_stewards(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value) or len(set(value)) != len(value):
            raise ValueError(f"concerned stewards must be distinct roster ids, got {value}")
        return tuple(sorted(value))

    @field_validator("record_sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        return _hex(value)

    @field_validator("footprint")
    @classmethod
    def _box(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        west, south, east, north = value
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValueError(f"footprint must be [west, south, east, north], got {list(value)}")
        return value

    def to_dict(self) -> dict[str, Any]:
        # A whole number is written as an int: the same RFC 8785 bytes (-110.0 and -110 are
        # both "-110"), but the statement then takes core.jsonio's fast path.
        return {
            "submitter": self.submitter,
            "concerned_stewards": list(self.concerned_stewards),
            "model_family": self.model_family,
            "footprint": [int(v) if v.is_integer() else v for v in self.footprint],
            "record_sha256": self.record_sha256,
            "rules": self.rules.model_dump(),
        }


# Fields only some kinds carry: (field, kinds that may, kinds that must).
_KIND_FIELDS: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    ("facts", frozenset({"registered"}), frozenset({"registered"})),
    ("gates_failed", frozenset({"gates-attested"}), frozenset()),
    ("breaches", frozenset({"monitoring", "rollback"}), frozenset({"rollback"})),
    ("gate", frozenset({"waive"}), frozenset({"waive"})),
    ("target_version", frozenset({"rollback"}), frozenset()),
)


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
    anchor: Anchor = Field(description="The ledger head the signer saw")
    channel: str | None = Field(default=None, description="e.g. 'production', 'staging'")
    target_version: str | None = Field(default=None, description="rollback target, if any")
    evidence: tuple[EvidenceRef, ...] = ()
    roster_serial: int | None = Field(default=None, ge=1)
    facts: VersionFacts | None = None
    gates_failed: tuple[str, ...] = ()
    breaches: tuple[BreachKind, ...] = ()
    gate: str | None = Field(default=None, min_length=1)

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

    @field_validator("gates_failed", "breaches")
    @classmethod
    def _sorted_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name for name in value) or len(set(value)) != len(value):
            raise ValueError(f"must be distinct, non-empty names, got {list(value)}")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _kind_fields(self) -> DecisionRecord:
        for name, kinds, required in _KIND_FIELDS:
            value = getattr(self, name)
            present = value is not None and value != ()
            if present and self.kind not in kinds:
                raise ValueError(f"'{name}' is for {sorted(kinds)} records, not '{self.kind}'")
            if not present and self.kind in required:
                raise ValueError(f"a '{self.kind}' record needs '{name}'")
        return self

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
            "anchor": self.anchor.to_dict(),
            "roster_serial": self.roster_serial,
            "facts": None if self.facts is None else self.facts.to_dict(),
            "gates_failed": list(self.gates_failed),
            "breaches": list(self.breaches),
            "gate": self.gate,
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
        if statement.get("predicateType") == FORMAT_1_PREDICATE_TYPE:
            raise VerificationError(
                "decision record format 1: this workspace predates decision records format 2 "
                "(anchored records, derived promotions)",
                file=_SOURCE,
                field="predicateType",
                expected=DECISION_PREDICATE_TYPE,
                found=FORMAT_1_PREDICATE_TYPE,
                hint="rebuild the demo with `kfm demo --fresh`, or start a new workspace with "
                "`kfm init`",
            )
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
                anchor=predicate["anchor"],  # nested models are validated by pydantic
                channel=predicate.get("channel"),
                target_version=predicate.get("target_version"),
                evidence=tuple(
                    EvidenceRef(name=e["name"], sha256=e["digest"]["sha256"])
                    for e in predicate.get("evidence", [])
                ),
                roster_serial=predicate["roster_serial"],
                facts=predicate["facts"],
                gates_failed=tuple(predicate["gates_failed"]),
                breaches=tuple(predicate["breaches"]),
                gate=predicate["gate"],
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
    at: datetime,
    expected_subject: ModelSubject | None = None,
) -> DecisionRecord:
    """The verified record; refuses anything the roster does not back (see module docstring).

    ``at`` is when the ledger records (or recorded) the envelope: the actor's role and key are
    checked then, so a revoked key cannot back-date a record into its validity.
    """
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
    # Unknown actor, role not granted, key not valid or revoked when recorded.
    entry = roster.authorize(record.actor, record.role, at)
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
