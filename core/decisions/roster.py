"""The roster: who may sign which decisions, signed by the governance root key.

``roster.json`` lists reviewers (id, display name, roles, public key PEM, validity window,
revocation). ``roster.json.sig`` beside it is a DSSE envelope (payload type
:data:`ROSTER_PAYLOAD_TYPE`) whose payload is the RFC 8785 canonical form of the roster JSON,
signed by the governance root key. The root public key is always supplied separately: a roster
cannot vouch for its own root. Any edit to ``roster.json`` after signing (whitespace aside)
invalidates it until it is re-signed.

``serial`` (an integer from 1) grows with every change: :func:`add_reviewer` and
:func:`revoke_reviewer` increment it, and :func:`sign_roster` refuses to sign changed content
under a serial that is not higher than the one it replaces. Readers refuse a roster whose serial is
lower than one already recorded (:func:`check_roster_serial`: the ledger, the newest checkpoint,
this client's witness), so restoring an earlier signed roster, e.g. to bring a revoked key back,
is detected although its signature is valid.

Public API:

- :class:`RosterEntry`, :class:`Roster` — frozen pydantic models; ``Roster.from_dict``/``to_dict``.
- :func:`load_roster` ``(roster_path, root_public_key, *, signature_path=None) -> TrustedRoster``
  reads and verifies; this is how every use of the roster starts.
- :func:`verify_roster_data` ``(data, envelope, root_public_key, *, source) -> TrustedRoster``
  does the same on in-memory data.
- :class:`TrustedRoster` — a verified roster; ``authorize(actor, role, at) -> RosterEntry``
  refuses an unknown actor, a role not granted, a time outside ``valid_from``/``valid_until``
  and a revoked key (:class:`core.errors.AuthorizationError`); ``dsse_key(entry)`` is the
  entry's public key as a securesystemslib key, parsed once per key and then cached (verifying
  a ledger checks thousands of records signed by a handful of keys).
- :func:`sign_roster` ``(roster_path, root, *, signature_path=None) -> Path`` and
  :func:`sign_roster_data` ``(data, root) -> dict`` (the envelope).
- :func:`add_reviewer` ``(roster_path, entry) -> Roster`` appends (creating the file if needed);
  :func:`revoke_reviewer`; :func:`read_roster_unverified` is for editing only.
- :func:`check_roster_serial` ``(roster, recorded)`` refuses a roster older than a recorded one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from core.errors import AuthorizationError, RosterError
from core.jsonio import canonical_json_bytes
from core.signing.keys import KeySigner, dsse_public_key, key_fingerprint, public_key_from_pem

Role = Literal["council", "steward", "working_group", "pipeline", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
ROSTER_PAYLOAD_TYPE = "application/vnd.kfm.roster+json"
ROSTER_FORMAT_VERSION: Literal[1] = 1
DEFAULT_ROSTER_PATH = Path("governance") / "roster.json"
SIGNATURE_SUFFIX = ".sig"
MAX_NAME_CHARS = 200  # a display name, shown in tables and beside every decision


def default_signature_path(roster_path: Path) -> Path:
    """``roster.json`` → ``roster.json.sig`` beside it."""
    return roster_path.with_name(roster_path.name + SIGNATURE_SUFFIX)


class RosterEntry(BaseModel):
    """One reviewer (or the pipeline) with their key, roles and validity window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    roles: tuple[Role, ...] = Field(min_length=1)
    public_key: str = Field(description="SubjectPublicKeyInfo PEM of an EC P-256 key")
    valid_from: datetime
    valid_until: datetime | None = None
    revoked: bool = False
    revoked_at: datetime | None = Field(
        default=None, description="When the key was revoked; unset with revoked=true: always"
    )

    @field_validator("public_key")
    @classmethod
    def _p256(cls, value: str) -> str:
        try:
            public_key_from_pem(value)
        except Exception as error:  # noqa: BLE001 - re-raised as a validation message
            raise ValueError(getattr(error, "message", str(error))) from error
        return value

    @field_validator("valid_from", "valid_until", "revoked_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("times must carry a timezone, e.g. 2026-11-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _window(self) -> RosterEntry:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if len(set(self.roles)) != len(self.roles):
            raise ValueError(f"roles listed twice: {list(self.roles)}")
        return self

    @property
    def key(self) -> ec.EllipticCurvePublicKey:
        """The parsed public key."""
        return public_key_from_pem(self.public_key, source=f"roster entry '{self.id}'")

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the public key (the DSSE ``keyid`` of this reviewer)."""
        return key_fingerprint(self.key)


class Roster(BaseModel):
    """Every reviewer; ids are unique and the list is never empty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1] = ROSTER_FORMAT_VERSION
    serial: int = Field(
        1, ge=1, description="Grows with every change; an older roster is refused once seen"
    )
    reviewers: tuple[RosterEntry, ...] = Field(min_length=1)

    @field_validator("reviewers")
    @classmethod
    def _unique(cls, reviewers: tuple[RosterEntry, ...]) -> tuple[RosterEntry, ...]:
        ids = [r.id for r in reviewers]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"reviewer ids listed twice: {duplicates}")
        return reviewers

    def entry(self, reviewer_id: str) -> RosterEntry | None:
        """The entry with this id, if any."""
        return next((r for r in self.reviewers if r.id == reviewer_id), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON data as written to ``roster.json``."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "roster.json") -> Roster:
        """Validate roster data; errors name the file and the failing field."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise RosterError(
                "roster is malformed: " + first["msg"],
                file=source,
                field=field,
                expected="a roster as documented in core/decisions/roster.py",
                found=_short(first.get("input")),
            ) from error


@dataclass(frozen=True)
class TrustedRoster:
    """A roster whose signature by the root key has been verified."""

    roster: Roster
    root_fingerprint: str
    source: str = "roster.json"
    # Parsed keys by PEM text: a cache, not part of the roster's value.
    _dsse_keys: dict[str, SSlibKey] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def entry(self, reviewer_id: str) -> RosterEntry | None:
        """The entry with this id, if any."""
        return self.roster.entry(reviewer_id)

    @property
    def serial(self) -> int:
        """The roster's serial (signed with it)."""
        return self.roster.serial

    def entry_by_fingerprint(self, fingerprint: str) -> RosterEntry | None:
        """The entry whose public key has this fingerprint (a DSSE ``keyid``), if any."""
        return next((r for r in self.roster.reviewers if r.fingerprint == fingerprint), None)

    def dsse_key(self, entry: RosterEntry) -> SSlibKey:
        """``entry``'s public key as a securesystemslib key (keyid = fingerprint), cached."""
        key = self._dsse_keys.get(entry.public_key)
        if key is None:
            key = dsse_public_key(entry.key)
            self._dsse_keys[entry.public_key] = key
        return key

    def authorize(self, actor: str, role: str, at: datetime) -> RosterEntry:
        """The actor's entry if the roster grants ``role`` to a valid, unrevoked key at ``at``."""
        entry = self.roster.entry(actor)
        if entry is None:
            raise AuthorizationError(
                "actor is not on the roster",
                file=self.source,
                field="reviewers",
                expected=f"a reviewer with id '{actor}'",
                found=sorted(r.id for r in self.roster.reviewers),
            )
        where = f"reviewers[{entry.id}]"
        if role not in entry.roles:
            raise AuthorizationError(
                f"the roster does not grant role '{role}' to '{actor}'",
                file=self.source,
                field=f"{where}.roles",
                expected=role,
                found=list(entry.roles),
            )
        if at < entry.valid_from:
            raise AuthorizationError(
                f"key of '{actor}' is not yet valid at {at.isoformat()}",
                file=self.source,
                field=f"{where}.valid_from",
                expected=f"a time at or after {entry.valid_from.isoformat()}",
                found=at.isoformat(),
            )
        if entry.valid_until is not None and at >= entry.valid_until:
            raise AuthorizationError(
                f"key of '{actor}' expired before {at.isoformat()}",
                file=self.source,
                field=f"{where}.valid_until",
                expected=f"a time before {entry.valid_until.isoformat()}",
                found=at.isoformat(),
            )
        if entry.revoked and (entry.revoked_at is None or at >= entry.revoked_at):
            since = entry.revoked_at.isoformat() if entry.revoked_at else "always"
            raise AuthorizationError(
                f"key of '{actor}' is revoked",
                file=self.source,
                field=f"{where}.revoked",
                expected="an unrevoked key",
                found=f"revoked (since {since})",
            )
        return entry


def sign_roster_data(data: Mapping[str, Any], root: KeySigner) -> dict[str, Any]:
    """A DSSE envelope (as a dict) over the canonical roster, signed by the root key."""
    Roster.from_dict(data)  # never sign a malformed or empty roster
    envelope = Envelope(canonical_json_bytes(dict(data)), ROSTER_PAYLOAD_TYPE, {})
    envelope.sign(root.dsse_signer())
    return envelope.to_dict()


def sign_roster(roster_path: Path, root: KeySigner, *, signature_path: Path | None = None) -> Path:
    """Sign ``roster_path`` with the root key; writes and returns the signature file.

    When a signature is already there for other content, the roster's serial must be higher than
    the one that signature covers: two different signed rosters never share a serial.
    """
    data = _read_json(roster_path, RosterError)
    target = signature_path or default_signature_path(roster_path)
    _check_serial_grows(data, target, source=str(roster_path))
    envelope = sign_roster_data(data, root)
    target.write_text(json.dumps(envelope, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def _check_serial_grows(data: Mapping[str, Any], signature_path: Path, *, source: str) -> None:
    previous = _signed_payload(signature_path)
    if previous is None or previous == canonical_json_bytes(dict(data)):
        return
    try:
        old_serial = json.loads(previous).get("serial", 1)
    except (ValueError, AttributeError):
        return  # an unreadable old signature is replaced; it protected nothing
    serial = data.get("serial", 1)
    if isinstance(old_serial, int) and isinstance(serial, int) and serial <= old_serial:
        raise RosterError(
            "the roster changed but its serial did not grow",
            file=source,
            field="serial",
            expected=f"a serial above {old_serial} (the roster signed in {signature_path.name})",
            found=serial,
            hint="`kfm roster add` and `kfm roster revoke` raise it; after editing by hand, "
            "raise `serial` yourself, then sign",
        )


def _signed_payload(signature_path: Path) -> bytes | None:
    """The payload an existing signature file covers, or ``None`` when there is none."""
    try:
        envelope = Envelope.from_dict(json.loads(signature_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return envelope.payload


def check_roster_serial(roster: TrustedRoster, recorded: Mapping[str, int]) -> None:
    """Refuse ``roster`` when a higher serial was recorded; ``recorded`` maps where to which serial.

    The sources are the ledger's pipeline records, the newest checkpoint and this client's
    witness: a roster below any of them is an earlier roster put back (its signature is still
    valid, which is why the serial is needed).
    """
    if not recorded:
        return
    where, highest = max(recorded.items(), key=lambda item: item[1])
    if roster.serial < highest:
        raise RosterError(
            "the roster is older than one already recorded: an earlier signed roster was put "
            "back (it may bring a revoked key back)",
            file=roster.source,
            field="serial",
            expected=f"serial {highest} or higher (recorded by {where})",
            found=roster.serial,
            hint="restore the current roster.json and roster.json.sig, or have the root key "
            "holder sign a roster with a higher serial",
        )


def verify_roster_data(
    data: Mapping[str, Any],
    envelope: Mapping[str, Any],
    root_public_key: ec.EllipticCurvePublicKey,
    *,
    source: str = "roster.json",
    signature_source: str = "roster.json.sig",
) -> TrustedRoster:
    """Verify the root signature over ``data`` and return the trusted roster."""
    root_key = dsse_public_key(root_public_key)
    try:
        parsed = Envelope.from_dict(json.loads(json.dumps(dict(envelope))))
    except (KeyError, ValueError, TypeError) as error:
        raise RosterError(
            "roster signature is not a DSSE envelope",
            file=signature_source,
            field=str(error) or "signatures",
            expected="{payload, payloadType, signatures}",
            found=type(error).__name__,
        ) from error
    if parsed.payload_type != ROSTER_PAYLOAD_TYPE:
        raise RosterError(
            "roster signature has the wrong payload type",
            file=signature_source,
            field="payloadType",
            expected=ROSTER_PAYLOAD_TYPE,
            found=parsed.payload_type,
        )
    try:
        parsed.verify([root_key], 1)
    except Exception as error:  # noqa: BLE001 - securesystemslib raises several types
        keyids = sorted(parsed.signatures)
        raise RosterError(
            "roster signature does not verify with the root key",
            file=signature_source,
            field="signatures",
            expected=f"a valid signature by root key {root_key.keyid}",
            found=f"signatures by {keyids}" if keyids else "no signatures",
            hint="re-sign with `kfm roster sign` using the governance root key",
        ) from error
    current = canonical_json_bytes(dict(data))
    if current != parsed.payload:
        raise RosterError(
            "roster was edited after it was signed",
            file=source,
            field=_first_difference(json.loads(parsed.payload), dict(data)),
            expected="the content signed by the root key",
            found="different content",
            hint="re-sign with `kfm roster sign` if the change is intended",
        )
    roster = Roster.from_dict(data, source=source)
    return TrustedRoster(roster=roster, root_fingerprint=root_key.keyid, source=source)


def load_roster(
    roster_path: Path = DEFAULT_ROSTER_PATH,
    root_public_key: ec.EllipticCurvePublicKey | None = None,
    *,
    signature_path: Path | None = None,
) -> TrustedRoster:
    """Read ``roster.json`` and its signature and verify them against the root public key."""
    if root_public_key is None:
        raise RosterError(
            "no root public key to verify the roster with",
            file=str(roster_path),
            expected="the governance root public key",
            found="none",
            hint="a roster cannot vouch for its own root: pass --root-pub",
        )
    sig_path = signature_path or default_signature_path(roster_path)
    if not sig_path.exists():
        raise RosterError(
            "roster is not signed",
            file=str(sig_path),
            expected="a signature file by the root key",
            found="missing",
            hint="sign it with `kfm roster sign`",
        )
    data = _read_json(roster_path, RosterError)
    envelope = _read_json(sig_path, RosterError)
    return verify_roster_data(
        data,
        envelope,
        root_public_key,
        source=str(roster_path),
        signature_source=str(sig_path),
    )


def read_roster_unverified(roster_path: Path) -> Roster:
    """Parse ``roster.json`` without checking its signature: for editing, never for trust."""
    return Roster.from_dict(_read_json(roster_path, RosterError), source=str(roster_path))


def write_roster(roster_path: Path, roster: Roster) -> None:
    """Write ``roster.json`` as indented JSON (this invalidates an existing signature)."""
    roster_path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(roster.to_dict(), indent=2, sort_keys=True) + "\n"
    roster_path.write_text(text, encoding="utf-8")


def add_reviewer(roster_path: Path, entry: RosterEntry) -> Roster:
    """Append ``entry`` to the roster file (creating it); refuses an id already present."""
    existing: Sequence[RosterEntry] = ()
    serial: int
    if roster_path.exists():
        current = read_roster_unverified(roster_path)
        if current.entry(entry.id) is not None:
            raise RosterError(
                "reviewer id already on the roster",
                file=str(roster_path),
                field=f"reviewers[{entry.id}]",
                expected="a new id",
                found=entry.id,
            )
        existing = current.reviewers
        serial = current.serial + 1
    else:
        serial = 1
    roster = Roster(serial=serial, reviewers=(*existing, entry))
    write_roster(roster_path, roster)
    return roster


def revoke_reviewer(roster_path: Path, reviewer_id: str, at: datetime) -> Roster:
    """Mark a reviewer's key revoked from ``at`` on; records signed before ``at`` stay valid.

    The roster must be re-signed by the root key afterwards (``kfm roster sign``).
    """
    current = read_roster_unverified(roster_path)
    entry = current.entry(reviewer_id)
    if entry is None:
        raise RosterError(
            "no such reviewer on the roster",
            file=str(roster_path),
            field="id",
            expected=[r.id for r in current.reviewers],
            found=reviewer_id,
        )
    if entry.revoked:
        raise RosterError(
            "reviewer is already revoked",
            file=str(roster_path),
            field=f"reviewers[{reviewer_id}].revoked",
            expected="a reviewer not yet revoked",
            found=f"revoked at {entry.revoked_at}",
        )
    updated = entry.model_copy(update={"revoked": True, "revoked_at": at})
    roster = Roster(
        format_version=current.format_version,
        serial=current.serial + 1,
        reviewers=tuple(updated if r.id == reviewer_id else r for r in current.reviewers),
    )
    write_roster(roster_path, roster)
    return roster


def _first_difference(signed: Any, current: Any, path: str = "") -> str:
    """Dotted path of the first field where the signed and current rosters differ."""
    if isinstance(signed, dict) and isinstance(current, dict):
        for key in sorted(set(signed) | set(current)):
            if signed.get(key) != current.get(key):
                return _first_difference(signed.get(key), current.get(key), _join(path, key))
        return path or "(root)"
    if isinstance(signed, list) and isinstance(current, list):
        if all(isinstance(i, dict) and "id" in i for i in signed + current):
            old = {i["id"]: i for i in signed}
            new = {i["id"]: i for i in current}
            for rid in sorted(set(old) | set(new)):
                if old.get(rid) != new.get(rid):
                    return _first_difference(old.get(rid), new.get(rid), f"{path}[{rid}]")
        for index, (a, b) in enumerate(zip(signed, current, strict=False)):
            if a != b:
                return _first_difference(a, b, f"{path}[{index}]")
        return f"{path}[{min(len(signed), len(current))}]"
    return path or "(root)"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _read_json(path: Path, error_type: type[RosterError]) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise error_type(
            "file cannot be read",
            file=str(path),
            expected="a JSON file",
            found=error.strerror or type(error).__name__,
        ) from error
    except json.JSONDecodeError as error:
        raise error_type(
            "file is not valid JSON",
            file=str(path),
            field=f"line {error.lineno} column {error.colno}",
            expected="JSON",
            found=error.msg,
        ) from error
    if not isinstance(data, dict):
        raise error_type(
            "file is not a JSON object",
            file=str(path),
            expected="object",
            found=type(data).__name__,
        )
    return data


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
