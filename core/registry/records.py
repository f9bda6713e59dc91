"""Registry version records, signed by the pipeline key (registry format 2).

``climate/index/<version>.json`` is a version's commit marker and its manifest entry: who
submitted it, which stewards its footprint concerns, its model family and footprint, and every
stored file with its SHA-256. The engine acts on these facts (who may approve, whose consent is
needed), so the record is signed: the file is a DSSE envelope (securesystemslib, as decisions
and the roster are) whose payload is the RFC 8785 canonical JSON of :class:`VersionRecord`, with
payload type :data:`VERSION_PAYLOAD_TYPE` and one signature by the pipeline key (``keyid`` = the
key's fingerprint, :func:`core.signing.keys.key_fingerprint`).

- :func:`version_record_bytes` ``(record, signer) -> bytes`` — the index file's content.
- :func:`read_version_record` ``(data, *, key, version, source) -> VersionRecord`` — refuses
  anything but one valid signature by ``key`` over the canonical form of a record of exactly
  ``version`` (an index entry copied under another version's name is refused), raising
  :class:`RecordVerificationError` naming the file, the field, expected and found.

Registries written before format 2 hold unsigned records (a plain JSON object): they are refused
with a message saying the registry predates signed records; they are not read.
:attr:`VersionRecord.digest` (the hex SHA-256 of the signed payload) is what the ledger's
``registered`` record binds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from securesystemslib.dsse import Envelope

from core.errors import RegistryError
from core.jsonio import canonical_json_bytes
from core.registry.layout import REGISTRY_FORMAT
from core.signing.digests import DEFAULT_EXCLUDE, Manifest, ModelSubject
from core.signing.keys import KeySigner, dsse_public_key, key_fingerprint

VERSION_PAYLOAD_TYPE = "application/vnd.kfm.version+json"
PREDATES_HINT = (
    "this registry was written before version records were signed (registry format 2): "
    "deploy into a new registry (`kfm demo --fresh` rebuilds the demo)"
)


class RecordVerificationError(RegistryError):
    """A version record that is not signed by the pipeline key, or not of its version."""


class VersionRecord(BaseModel):
    """What a committed version holds and who it concerns: the signed registry manifest entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[2] = REGISTRY_FORMAT
    version: str
    name: str = Field(min_length=1, description="Model name (decision subject name)")
    model_family: str = Field(min_length=1, description="Family stewards consent to")
    pushed_at: datetime
    submitter: str = Field(min_length=1, description="Roster id of who submitted the candidate")
    concerned_stewards: tuple[str, ...] = Field(
        default=(),
        description="Roster ids of stewards whose region or its buffer the footprint touches",
    )
    footprint: tuple[float, float, float, float] = Field(
        description="(west, south, east, north) of the validation grid's cells, in degrees"
    )
    manifest: Manifest = Field(description="Every stored file with its SHA-256 and size")

    @property
    def subject(self) -> ModelSubject:
        """The decision subject: digests over the stored files except the signature itself."""
        signed = Manifest(
            files=tuple(f for f in self.manifest.files if f.name not in DEFAULT_EXCLUDE)
        )
        return ModelSubject.from_manifest(self.name, signed)

    def payload_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of the record: what the pipeline key signs."""
        return canonical_json_bytes(self.model_dump(mode="json"))

    @property
    def digest(self) -> str:
        """Hex SHA-256 of the signed payload (bound into the ``registered`` decision)."""
        return hashlib.sha256(self.payload_bytes()).hexdigest()


def version_record_bytes(record: VersionRecord, signer: KeySigner) -> bytes:
    """``climate/index/<version>.json``: the record in a DSSE envelope signed by ``signer``."""
    envelope = Envelope(record.payload_bytes(), VERSION_PAYLOAD_TYPE, {})
    envelope.sign(signer.dsse_signer())
    text = json.dumps(envelope.to_dict(), indent=2, sort_keys=True) + "\n"
    return text.encode("utf-8")


def read_version_record(
    data: bytes, *, key: ec.EllipticCurvePublicKey, version: str, source: str
) -> VersionRecord:
    """The verified record of ``version`` in ``data`` (an index file); see the module docstring."""

    def refuse(message: str, field: str, expected: Any, found: Any) -> RecordVerificationError:
        return RecordVerificationError(
            message, file=source, field=field, expected=expected, found=found
        )

    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise refuse(
            "version record is not JSON", "(file)", "a DSSE envelope", str(error)[:80]
        ) from error
    if not isinstance(document, dict):
        raise refuse("version record is not an object", "(file)", "a DSSE envelope", document)
    if "payloadType" not in document and "format" in document:
        raise RecordVerificationError(
            "version record is unsigned: the registry predates signed version records",
            file=source,
            field="format",
            expected=f"a DSSE envelope holding a format-{REGISTRY_FORMAT} record",
            found=f"an unsigned format-{document.get('format')} record",
            hint=PREDATES_HINT,
        )
    if document.get("payloadType") != VERSION_PAYLOAD_TYPE:
        raise refuse(
            "not a version record envelope",
            "payloadType",
            VERSION_PAYLOAD_TYPE,
            document.get("payloadType"),
        )
    try:
        envelope = Envelope.from_dict(json.loads(json.dumps(document)))
        payload = envelope.payload
    except (KeyError, ValueError, TypeError, binascii.Error) as error:
        raise refuse(
            "not a DSSE envelope", "payload", "{payload, payloadType, signatures}", repr(error)
        ) from error
    trusted = dsse_public_key(key)
    keyids = [s for s in envelope.signatures]
    if keyids != [trusted.keyid]:
        raise refuse(
            "version record is not signed by the pipeline key",
            "signatures",
            f"one signature by {key_fingerprint(key)}",
            keyids or "no signature",
        )
    try:
        envelope.verify([trusted], 1)
    except Exception as error:  # noqa: BLE001 - securesystemslib raises several types
        raise refuse(
            "version record signature does not verify with the pipeline key",
            "signatures[0].sig",
            f"a valid ECDSA P-256 signature by {trusted.keyid}",
            "an invalid signature (record or signature edited)",
        ) from error
    try:
        record = VersionRecord.model_validate_json(payload)
    except ValidationError as error:
        first = error.errors()[0]
        raise refuse(
            "signed version record is malformed",
            "payload." + ".".join(str(p) for p in first["loc"]),
            "a version record",
            first["msg"],
        ) from error
    if record.payload_bytes() != payload:
        raise refuse(
            "version record payload is not canonical",
            "payload",
            "RFC 8785 canonical JSON of the record",
            base64.b64encode(payload[:24]).decode("ascii") + "...",
        )
    if record.version != version:
        raise refuse(
            "version record is about another version", "payload.version", version, record.version
        )
    return record
