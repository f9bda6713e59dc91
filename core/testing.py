"""In-memory fakes of the outside world, shipped with the engine for tests and the dashboard.

- :class:`MemoryStore` — an :class:`core.registry.stores.ObjectStore` in a dict.
- :class:`MemoryLedger` — a :class:`core.decisions.ledger.Ledger` in a list, serialized by a lock.
- :func:`make_governance` — fresh P-256 keys for a set of reviewers and a roster signed by a
  fresh root key, as a :class:`Governance` (signers by id + the trusted roster).
- :func:`write_version_dir` — a small directory in registry layout, for pushes;
  :func:`push_version` pushes one with test facts (:data:`TEST_FAMILY`, :data:`TEST_FOOTPRINT`),
  signed by the given pipeline key; :func:`register_test_version` pushes one and registers it
  with the engine (the pipeline's ``registered`` and ``gates-attested`` records, test facts).
- :func:`signed_decision` — a decision record of any shape, signed (attack tests forge with it).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope

from core.decisions.engine import DecisionEngine
from core.decisions.ledger import Clock, Decide, LedgerEntry, chain
from core.decisions.records import Anchor, EvidenceRef
from core.decisions.reviewer import decision_envelope
from core.decisions.roster import TrustedRoster, sign_roster_data, verify_roster_data
from core.errors import KfmError, RegistryError
from core.registry.layout import GATES_FILE, ITEM_FILE, MODEL_FILE, PROVENANCE_FILE, SIGNATURE_FILE
from core.registry.records import VersionRecord
from core.registry.stores import ObjectExists, _check_key
from core.registry.versions import Registry
from core.signing.digests import ModelSubject
from core.signing.keys import KeySigner, public_key_pem


class MemoryStore:
    """Objects in a dict; create-once is exclusive under a lock."""

    def __init__(self, location: str = "memory://registry") -> None:
        self.location = location
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def read(self, key: str) -> bytes:
        try:
            return self.objects[_check_key(key)]
        except KeyError as error:
            raise RegistryError("object not found", file=f"{self.location}/{key}") from error

    def create(self, key: str, data: bytes) -> None:
        with self._lock:
            if _check_key(key) in self.objects:
                raise ObjectExists("object already exists", file=f"{self.location}/{key}")
            self.objects[key] = bytes(data)

    def write(self, key: str, data: bytes) -> None:
        with self._lock:
            self.objects[_check_key(key)] = bytes(data)

    def list(self, prefix: str) -> list[str]:
        start = prefix.strip("/") + "/" if prefix.strip("/") else ""
        return sorted(k for k in self.objects if k.startswith(start))

    def exists(self, key: str) -> bool:
        return _check_key(key) in self.objects

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(_check_key(key), None)


class MemoryLedger:
    """A ledger in a list."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.location = "memory://ledger"
        self.rows: list[LedgerEntry] = []
        self._lock = threading.Lock()
        self._clock = clock or (lambda: datetime.now(UTC))

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self.rows)

    def read_from(self, seq: int) -> list[LedgerEntry]:
        with self._lock:
            return [row for row in self.rows if row.seq >= seq]

    def transact(self, decide: Decide) -> list[LedgerEntry]:
        with self._lock:
            envelopes = decide(list(self.rows))
            new = chain(self.rows[-1] if self.rows else None, envelopes, self._clock())
            self.rows.extend(new)
            return new

    def append(self, envelope: Envelope | Mapping[str, Any]) -> LedgerEntry:
        (entry,) = self.transact(lambda _rows: [envelope])
        return entry

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class Governance:
    """Signers by roster id, the root signer and the trusted roster they make."""

    root: KeySigner
    signers: Mapping[str, KeySigner]
    roster: TrustedRoster
    roster_data: Mapping[str, Any]
    roster_envelope: Mapping[str, Any]

    def __getitem__(self, reviewer: str) -> KeySigner:
        return self.signers[reviewer]


def new_signer(key_id: str) -> KeySigner:
    """A fresh P-256 key held in memory."""
    return KeySigner(key_id=key_id, private_key=ec.generate_private_key(ec.SECP256R1()))


def make_governance(
    reviewers: Mapping[str, Sequence[str]],
    *,
    valid_from: datetime | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Governance:
    """Keys for ``{id: roles}`` and a root-signed roster; ``overrides`` patch entries."""
    start = valid_from or datetime(2020, 1, 1, tzinfo=UTC)
    signers = {rid: new_signer(rid) for rid in reviewers}
    entries = []
    for rid, roles in reviewers.items():
        entry: dict[str, Any] = {
            "id": rid,
            "name": rid,
            "roles": list(roles),
            "public_key": public_key_pem(signers[rid].public_key),
            "valid_from": start.isoformat(),
            "valid_until": None,
            "revoked": False,
            "revoked_at": None,
        }
        entry.update((overrides or {}).get(rid, {}))
        entries.append(entry)
    data = {"format_version": 1, "reviewers": entries}
    root = new_signer("root")
    envelope = sign_roster_data(data, root)
    roster = verify_roster_data(data, envelope, root.public_key)
    return Governance(root, signers, roster, data, envelope)


def default_reviewers() -> dict[str, list[str]]:
    """The cast used across tests: three council members, two stewards, WG, pipeline."""
    return {
        "alice": ["council"],
        "bob": ["council"],
        "carol": ["council"],
        "sam": ["steward"],
        "tess": ["steward"],
        "wendy": ["working_group"],
        "dev": ["council"],  # a council member who also submits models
        "pipeline": ["pipeline"],
    }


def write_version_dir(root: Path, *, seed: str = "x", size: int = 256) -> Path:
    """A minimal directory in registry layout with content varying with ``seed``."""
    root.mkdir(parents=True, exist_ok=True)
    body = (seed * size).encode()[:size]
    (root / MODEL_FILE).write_bytes(b"ONNX" + body)
    for name in (ITEM_FILE, PROVENANCE_FILE, GATES_FILE):
        (root / name).write_text(f'{{"seed": "{seed}", "file": "{name}"}}\n', encoding="utf-8")
    (root / SIGNATURE_FILE).write_text(f'{{"bundle": "{seed}"}}\n', encoding="utf-8")
    (root / "xai").mkdir(exist_ok=True)
    (root / "xai" / "summary.json").write_text(f'{{"seed": "{seed}"}}\n', encoding="utf-8")
    (root / "telemetry").mkdir(exist_ok=True)
    (root / "telemetry" / "run.json").write_text(f'{{"seed": "{seed}"}}\n', encoding="utf-8")
    return root


TEST_FAMILY = "kfm-climate-downscaling"
TEST_FOOTPRINT = (-110.0, 30.0, -90.0, 50.0)
"""The footprint test versions are registered with (west, south, east, north)."""


def push_version(
    registry: Registry,
    version: str,
    source: Path,
    signer: KeySigner,
    *,
    name: str = "downscaler",
    submitter: str = "dev",
    concerned_stewards: Sequence[str] = (),
    model_family: str = TEST_FAMILY,
    footprint: Sequence[float] = TEST_FOOTPRINT,
) -> VersionRecord:
    """Push ``source`` as ``version``, signed by ``signer`` (the registry's pipeline key)."""
    return registry.push(
        version,
        source,
        name=name,
        model_family=model_family,
        submitter=submitter,
        concerned_stewards=concerned_stewards,
        footprint=footprint,
        signer=signer,
    )


def register_test_version(
    engine: DecisionEngine,
    source: Path,
    version: str,
    *,
    name: str = "downscaler",
    submitter: str = "dev",
    concerned_stewards: Sequence[str] = ("sam",),
    gates_failed: Sequence[str] = (),
) -> VersionRecord:
    """Push ``source`` as ``version`` and register it (the engine needs the pipeline key)."""
    record = push_version(
        engine.registry,
        version,
        source,
        engine._require_pipeline(),
        name=name,
        submitter=submitter,
        concerned_stewards=concerned_stewards,
    )
    engine.register(
        record,
        gates_json=(source / GATES_FILE).read_bytes(),
        gates_failed=gates_failed,
    )
    return record


def signed_decision(
    signer: KeySigner,
    *,
    kind: str,
    role: str,
    version: str,
    subject: ModelSubject,
    time: datetime,
    anchor: Anchor,
    reason: str = "reviewed the gates, attributions and lineage",
    target_version: str | None = None,
    evidence: Sequence[EvidenceRef] = (),
    **fields: Any,
) -> dict[str, Any]:
    """A decision record of any kind signed by ``signer`` (actor = its key id), as envelope JSON.

    Built by :func:`core.decisions.reviewer.decision_envelope`, as every decision is; for a
    reviewer's decision with the evidence the policy names, use
    :func:`core.decisions.reviewer.prepare_decision` or ``submit_decision``. ``fields`` are
    further record fields (``gate``, ``breaches``, ``facts``...).
    """
    return decision_envelope(
        signer,
        kind=kind,
        role=role,
        version=version,
        subject=subject,
        reason=reason,
        time=time,
        anchor=anchor,
        evidence=evidence,
        target_version=target_version,
        **fields,
    )


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


__all__ = [
    "FixedClock",
    "Governance",
    "KfmError",
    "MemoryLedger",
    "MemoryStore",
    "TEST_FAMILY",
    "TEST_FOOTPRINT",
    "default_reviewers",
    "make_governance",
    "new_signer",
    "push_version",
    "register_test_version",
    "signed_decision",
    "write_version_dir",
]
