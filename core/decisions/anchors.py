"""The checks that anchor a verified ledger: checkpoint, client witness, roster serial, registry.

Verifying each entry (:mod:`core.decisions.verify`) proves the rows chain and are signed; it
cannot tell whether rows are *missing* at the end, or whether the whole chain after some row was
rebuilt with recomputed hashes. These checks can:

1. **checkpoint** — the newest signed checkpoint in the registry
   (:mod:`core.decisions.checkpoints`): the ledger is at least that long and has the same entry
   hash at its seq;
2. **witness** — what this client verified before (:class:`core.decisions.trust.Witness`): the
   ledger is at least that long and has the same entry hash at that seq; a checkpoint the client
   saw that is gone is reported;
3. **roster serial** — the roster's serial is not below the highest recorded in the ledger's
   pipeline records, the newest checkpoint or the witness
   (:func:`core.decisions.roster.check_roster_serial`);
4. **registry cross-check** — every committed registry version has a ``registered`` entry;
   versions without one (a truncated ledger, or a deploy interrupted between push and register)
   are reported.

Use: ``anchors = read_anchors(...)`` *before* reading the ledger (a checkpoint or witness written
after the entries were read would look like a truncation), then ``report = check_anchors(entries,
anchors, ...)`` on the verified entries, then :func:`remember_verified` records the witness.
Failures 1-3 raise (:class:`core.errors.LedgerError`, :class:`core.errors.RosterError`);
the findings of 2 (checkpoint gone) and 4 are :attr:`AnchorReport.warnings`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.decisions.checkpoints import (
    VerifiedCheckpoint,
    check_against_checkpoint,
    entry_at,
    newest_checkpoint,
)
from core.decisions.ledger import GENESIS, LedgerEntry
from core.decisions.roster import TrustedRoster, check_roster_serial
from core.decisions.trust import TrustStore, Witness
from core.errors import LedgerError
from core.registry.versions import Registry


@dataclass(frozen=True)
class Anchors:
    """What the ledger is checked against, read before the ledger."""

    root_fingerprint: str
    checkpoint: VerifiedCheckpoint | None
    witness: Witness | None
    witness_file: str
    registry_versions: tuple[str, ...]


def read_anchors(*, registry: Registry, roster: TrustedRoster, trust: TrustStore) -> Anchors:
    """The newest checkpoint (verified with ``roster``), the client's witness, registry versions."""
    fingerprint = roster.root_fingerprint
    return Anchors(
        root_fingerprint=fingerprint,
        checkpoint=newest_checkpoint(registry, roster),
        witness=trust.witness(fingerprint),
        witness_file=str(trust.witness_path(fingerprint)),
        registry_versions=tuple(registry.list()),
    )


@dataclass(frozen=True)
class AnchorReport:
    """The outcome of :func:`check_anchors` on a ledger that passed them."""

    root_fingerprint: str
    head_seq: int
    head_hash: str
    checkpoint: VerifiedCheckpoint | None
    witness: Witness | None
    roster_serial: int
    unregistered: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No warnings (a refusal raises instead of returning a report)."""
        return not self.warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "root_fingerprint": self.root_fingerprint,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "checkpoint": None if self.checkpoint is None else self.checkpoint.to_dict(),
            "witness": None if self.witness is None else self.witness.model_dump(mode="json"),
            "roster_serial": self.roster_serial,
            "unregistered_versions": list(self.unregistered),
            "warnings": list(self.warnings),
        }


def check_witness(
    entries: Sequence[LedgerEntry], witness: Witness, *, source: str, checkpoint_seq: int
) -> list[str]:
    """Refuse a ledger shorter than ``witness`` or forked from it; warn of a checkpoint gone."""
    head = entries[-1].seq if entries else 0
    if head < witness.seq:
        raise LedgerError(
            f"ledger truncated: this client verified it up to entry #{witness.seq}, it now ends "
            f"at #{head}",
            file=source,
            field="seq",
            expected=f"at least {witness.seq} entries",
            found=f"{head} entries",
            hint="rows were deleted from the ledger; restore them from a backup",
        )
    if witness.seq > 0:
        entry = entry_at(entries, witness.seq)
        found = None if entry is None else entry.entry_hash
        if found != witness.entry_hash:
            raise LedgerError(
                f"ledger forked: entry #{witness.seq} is not the one this client verified "
                "(rows were rewritten, reordered or removed and the hashes recomputed)",
                file=source,
                field="entry_hash",
                expected=witness.entry_hash,
                found=found,
                hint="restore the ledger from a backup",
            )
    if checkpoint_seq < witness.checkpoint_seq:
        return [
            f"checkpoint #{witness.checkpoint_seq}, which this client saw, is gone from the "
            f"registry (newest now: {f'#{checkpoint_seq}' if checkpoint_seq else 'none'}): "
            "checkpoint files were deleted; `kfm ledger checkpoint` writes a new one"
        ]
    return []


def recorded_roster_serial(entries: Sequence[LedgerEntry]) -> int:
    """The highest ``roster_serial`` in the signed payloads of the pipeline's records (0: none).

    Read from entries that verified; records without the field (written before it existed)
    count as none.
    """
    highest = 0
    for entry in entries:
        if entry.role != "pipeline":
            continue
        try:
            payload = json.loads(base64.b64decode(entry.envelope_dict()["payload"]))
            value = payload.get("predicate", {}).get("roster_serial")
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # verification names malformed rows; this only reads serials
        if isinstance(value, int) and not isinstance(value, bool):
            highest = max(highest, value)
    return highest


def unregistered_versions(
    entries: Sequence[LedgerEntry], registry_versions: Sequence[str]
) -> list[str]:
    """Committed registry versions that no ``registered`` entry records."""
    registered = {e.version for e in entries if e.kind == "registered"}
    return [v for v in registry_versions if v not in registered]


def check_anchors(
    entries: Sequence[LedgerEntry],
    anchors: Anchors,
    *,
    roster: TrustedRoster,
    ledger_roster_serial: int = 0,
) -> AnchorReport:
    """Run checks 1-4 of the module docstring on verified ``entries``; raise on a refusal.

    ``ledger_roster_serial`` is the highest roster serial the verified ledger records
    (:func:`recorded_roster_serial`).
    """
    checkpoint, witness = anchors.checkpoint, anchors.witness
    if checkpoint is not None:
        check_against_checkpoint(entries, checkpoint)
    warnings: list[str] = []
    if witness is not None:
        warnings += check_witness(
            entries,
            witness,
            source=anchors.witness_file,
            checkpoint_seq=0 if checkpoint is None else checkpoint.seq,
        )
    recorded = {"the ledger's pipeline records": ledger_roster_serial}
    if checkpoint is not None:
        recorded[f"checkpoint #{checkpoint.seq} ({checkpoint.source})"] = (
            checkpoint.checkpoint.roster_serial
        )
    if witness is not None:
        recorded[f"this client's witness ({anchors.witness_file})"] = witness.roster_serial
    check_roster_serial(roster, recorded)
    unregistered = tuple(unregistered_versions(entries, anchors.registry_versions))
    if unregistered:
        warnings.append(
            "registry holds versions not registered in the ledger: "
            + ", ".join(unregistered)
            + " (a truncated ledger, or a deploy interrupted between push and register)"
        )
    head = entries[-1] if entries else None
    return AnchorReport(
        root_fingerprint=anchors.root_fingerprint,
        head_seq=0 if head is None else head.seq,
        head_hash=GENESIS if head is None else head.entry_hash,
        checkpoint=checkpoint,
        witness=witness,
        roster_serial=roster.serial,
        unregistered=unregistered,
        warnings=tuple(warnings),
    )


def remember_verified(
    trust: TrustStore,
    report: AnchorReport,
    *,
    checkpoint: VerifiedCheckpoint | None = None,
    now: datetime | None = None,
) -> Witness:
    """Record in this client's witness the state ``report`` describes (call after verifying).

    ``checkpoint``: one written since the report (``kfm ledger checkpoint``), if any.
    """
    newest = checkpoint or report.checkpoint
    return trust.record_witness(
        Witness(
            root=report.root_fingerprint,
            seq=report.head_seq,
            entry_hash=report.head_hash,
            checkpoint_seq=0 if newest is None else newest.seq,
            roster_serial=report.roster_serial,
            updated_at=now or datetime.now(UTC),
        )
    )
