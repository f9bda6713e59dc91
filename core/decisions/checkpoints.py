"""Signed checkpoints of the ledger head, stored in the registry beside the versions.

The ledger's hash chain proves the order of its rows only to someone who already trusts a later
row: whoever can write the database can delete the tail, or delete, reorder or rewrite rows and
recompute every hash after them. A checkpoint is the pipeline key's signature over the head as
it was — like a Certificate Transparency / Sigstore Rekor signed tree head or a Go checksum
database signed note — so a ledger shorter than a checkpoint, or one with another hash at the
checkpoint's position, is refused.

A checkpoint is a DSSE envelope (payload type :data:`CHECKPOINT_PAYLOAD_TYPE`) over the RFC 8785
payload ``{"seq", "entry_hash", "time", "roster_serial"}``, signed by a roster key with the
``pipeline`` role, created once at ``climate/checkpoints/<seq:012d>.json``
(:func:`core.registry.layout.checkpoint_key`). ``roster_serial`` is the serial of the roster the
writer verified against: a roster older than that is refused by later readers.

Writers are the holders of the pipeline key: ``kfm deploy`` after it registers a version,
monitoring after its records, the dashboard server after a submitted decision (when it holds the
key), and ``kfm ledger checkpoint`` on demand (after decisions by people, when no service
holding the pipeline key runs). :func:`checkpoint_head` reads the newest checkpoint, then the
ledger *as verified* by the engine, and :func:`write_checkpoint` checks the one against the
other: a writer never signs over a ledger that was cut back, nor over an entry that does not
verify.

Public API: :class:`Checkpoint`, :class:`VerifiedCheckpoint`, :func:`sign_checkpoint`,
:func:`verify_checkpoint`, :func:`read_checkpoint`, :func:`newest_checkpoint`,
:func:`check_against_checkpoint`, :func:`write_checkpoint`, :func:`checkpoint_head`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from securesystemslib.dsse import Envelope

from core.decisions.ledger import format_time
from core.decisions.roster import TrustedRoster
from core.decisions.state import VerifiedState
from core.errors import AuthorizationError, LedgerError, TrustError
from core.jsonio import canonical_json_bytes
from core.registry.layout import checkpoint_key
from core.registry.stores import ObjectExists
from core.registry.versions import Registry
from core.signing.keys import KeySigner

if TYPE_CHECKING:  # annotations only: a staging process (core.pipeline) never loads the engine
    from core.decisions.engine import DecisionEngine

CHECKPOINT_PAYLOAD_TYPE = "application/vnd.kfm.checkpoint+json"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class Checkpoint(BaseModel):
    """The ledger head at one moment: position, hash, time, and the roster serial in use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    entry_hash: str
    time: datetime
    roster_serial: int = Field(ge=1)

    @field_validator("entry_hash")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _HEX64.fullmatch(value):
            raise ValueError(f"must be 64 lowercase hex digits, got {value!r}")
        return value

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.utcoffset() is None:
            raise ValueError("time must carry a timezone")
        return value

    def payload(self) -> dict[str, Any]:
        """The signed payload as JSON data (times in the ledger's one format)."""
        return {
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "time": format_time(self.time),
            "roster_serial": self.roster_serial,
        }


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose signature by a pipeline key of the roster verified."""

    checkpoint: Checkpoint
    signer: str
    source: str

    @property
    def seq(self) -> int:
        return self.checkpoint.seq

    def to_dict(self) -> dict[str, Any]:
        return {**self.checkpoint.payload(), "signer": self.signer, "source": self.source}


def sign_checkpoint(checkpoint: Checkpoint, signer: KeySigner) -> dict[str, Any]:
    """The DSSE envelope (as JSON data) of ``checkpoint`` signed by ``signer``."""
    envelope = Envelope(canonical_json_bytes(checkpoint.payload()), CHECKPOINT_PAYLOAD_TYPE, {})
    envelope.sign(signer.dsse_signer())
    return envelope.to_dict()


def verify_checkpoint(
    data: Mapping[str, Any], roster: TrustedRoster, *, source: str
) -> VerifiedCheckpoint:
    """Check the envelope's signature by a roster key with the ``pipeline`` role at its time."""

    def refuse(message: str, field: str, expected: Any, found: Any) -> TrustError:
        return TrustError(message, file=source, field=field, expected=expected, found=found)

    try:
        envelope = Envelope.from_dict(json.loads(json.dumps(dict(data))))
    except (KeyError, ValueError, TypeError) as error:
        raise refuse(
            "checkpoint is not a DSSE envelope",
            "signatures",
            "{payload, payloadType, signatures}",
            type(error).__name__,
        ) from error
    if envelope.payload_type != CHECKPOINT_PAYLOAD_TYPE:
        raise refuse(
            "wrong payload type", "payloadType", CHECKPOINT_PAYLOAD_TYPE, envelope.payload_type
        )
    keyids = sorted(envelope.signatures)
    entries = [e for e in map(roster.entry_by_fingerprint, keyids) if e is not None]
    signer = next((e for e in entries if "pipeline" in e.roles), None)
    if signer is None:
        raise refuse(
            "checkpoint is not signed by a pipeline key of the roster",
            "signatures",
            "a signature by a roster key with the pipeline role",
            f"signatures by {keyids}" if keyids else "no signatures",
        )
    try:
        envelope.verify([roster.dsse_key(signer)], 1)
    except Exception as error:  # noqa: BLE001 - securesystemslib raises several types
        raise refuse(
            "checkpoint signature does not verify",
            "signatures",
            f"a valid signature by '{signer.id}'",
            "an invalid signature",
        ) from error
    try:
        body = json.loads(envelope.payload)
        checkpoint = Checkpoint.model_validate(body)
    except (ValueError, ValidationError) as error:
        raise refuse(
            "checkpoint payload is malformed",
            "payload",
            "{seq, entry_hash, time, roster_serial}",
            str(error).splitlines()[0],
        ) from error
    if canonical_json_bytes(checkpoint.payload()) != envelope.payload:
        raise refuse("checkpoint payload is not canonical", "payload", "RFC 8785 JSON", "other")
    try:
        roster.authorize(signer.id, "pipeline", checkpoint.time)
    except AuthorizationError as error:
        raise refuse(
            "checkpoint is signed by a pipeline key not valid at its time",
            "time",
            error.expected,
            error.found,
        ) from error
    return VerifiedCheckpoint(checkpoint, signer.id, source)


def newest_checkpoint(registry: Registry, roster: TrustedRoster) -> VerifiedCheckpoint | None:
    """The checkpoint with the highest seq in the registry, verified; ``None`` when none exists."""
    seqs = registry.checkpoint_seqs()
    return read_checkpoint(registry, seqs[-1], roster) if seqs else None


def read_checkpoint(registry: Registry, seq: int, roster: TrustedRoster) -> VerifiedCheckpoint:
    """The checkpoint stored at ``seq``, verified.

    A file whose name and signed seq disagree is refused: renaming an older checkpoint cannot
    stand in for a newer one.
    """
    source = f"{registry.location}/{checkpoint_key(seq)}"
    try:
        data = json.loads(registry.read_checkpoint(seq))
    except ValueError as error:
        raise TrustError(
            "checkpoint is not JSON", file=source, expected="a DSSE envelope", found=str(error)
        ) from error
    if not isinstance(data, dict):
        raise TrustError("checkpoint is not a JSON object", file=source, found=type(data).__name__)
    verified = verify_checkpoint(data, roster, source=source)
    if verified.seq != seq:
        raise TrustError(
            "checkpoint file name and signed position differ",
            file=source,
            field="seq",
            expected=seq,
            found=verified.seq,
        )
    return verified


def check_against_checkpoint(state: VerifiedState, checkpoint: VerifiedCheckpoint) -> None:
    """Refuse a verified ledger shorter than ``checkpoint`` or with another entry hash at its seq."""
    cp = checkpoint.checkpoint
    if state.head_seq < cp.seq:
        raise LedgerError(
            f"ledger truncated after checkpoint #{cp.seq}: it has fewer entries than were "
            "signed as its head",
            file=checkpoint.source,
            field="seq",
            expected=f"a ledger of at least {cp.seq} entries",
            found=f"{state.head_seq} entries",
            hint="rows were deleted from the ledger; restore them from a backup",
        )
    found = state.hash_at(cp.seq)
    if found != cp.entry_hash:
        raise LedgerError(
            f"ledger forked at checkpoint #{cp.seq}: its entry #{cp.seq} is not the one signed "
            "in the checkpoint (rows were rewritten, reordered or removed and the hashes "
            "recomputed)",
            file=checkpoint.source,
            field="entry_hash",
            expected=cp.entry_hash,
            found=found,
            hint="restore the ledger from a backup",
        )


def write_checkpoint(
    state: VerifiedState,
    registry: Registry,
    signer: KeySigner,
    roster: TrustedRoster,
    *,
    newest: VerifiedCheckpoint | None,
    now: datetime | None = None,
) -> VerifiedCheckpoint:
    """Sign the head of the verified ``state`` and store it; returns the checkpoint at that head.

    ``newest`` is the newest checkpoint as read *before* the ledger was (``None``: there was
    none), so that a checkpoint another writer adds meanwhile is never mistaken for a
    truncation. Refuses a ledger shorter than ``newest`` or with another hash at its seq, a
    roster older than it, and a signer that is not a pipeline key of ``roster`` (nobody could
    verify its checkpoint). A checkpoint already at this head (another writer) is kept when it
    has the same hash.
    """
    if state.head_seq == 0:
        raise LedgerError(
            "nothing to checkpoint: the ledger is empty",
            field="seq",
            expected="at least one entry",
            found=0,
        )
    entry = roster.entry_by_fingerprint(signer.fingerprint)
    if entry is None or "pipeline" not in entry.roles:
        raise AuthorizationError(
            "the checkpoint signer is not a pipeline key of the roster",
            file=roster.source,
            field="pipeline",
            expected="a key with the pipeline role",
            found=signer.key_id,
        )
    if newest is not None:
        if newest.checkpoint.roster_serial > roster.serial:
            raise TrustError(
                "the roster is older than the one the newest checkpoint was written with",
                file=roster.source,
                field="serial",
                expected=f"serial {newest.checkpoint.roster_serial} or higher ({newest.source})",
                found=roster.serial,
            )
        check_against_checkpoint(state, newest)
        if newest.seq == state.head_seq:
            return newest
    checkpoint = Checkpoint(
        seq=state.head_seq,
        entry_hash=state.head_hash,
        time=(now or datetime.now(UTC)),
        roster_serial=roster.serial,
    )
    body = json.dumps(sign_checkpoint(checkpoint, signer), indent=2, sort_keys=True) + "\n"
    source = f"{registry.location}/{checkpoint_key(state.head_seq)}"
    try:
        registry.write_checkpoint(state.head_seq, body.encode("utf-8"))
    except ObjectExists:  # another writer checkpointed this head meanwhile
        existing = read_checkpoint(registry, state.head_seq, roster)
        check_against_checkpoint(state, existing)
        return existing
    return VerifiedCheckpoint(checkpoint, entry.id, source)


def checkpoint_head(engine: DecisionEngine) -> VerifiedCheckpoint:
    """What a pipeline-key holder runs after its appends: checkpoint the verified head now.

    Reads the newest checkpoint, then the ledger as the engine verifies it (in that order),
    then :func:`write_checkpoint` with the engine's pipeline key and roster. A ledger with a
    broken entry is never checkpointed (verification raises first).
    """
    newest = newest_checkpoint(engine.registry, engine.roster)
    state = engine.state()
    return write_checkpoint(
        state, engine.registry, engine._require_pipeline(), engine.roster, newest=newest
    )
