"""The checks that anchor a verified ledger: checkpoint, client witness, roster serial, registry.

Verifying each entry (:mod:`core.decisions.verify`) proves the rows chain, are signed and
anchored on earlier rows; it cannot tell whether rows are *missing* at the end, or whether the
tail after some row was rebuilt from records whose anchors still hold. These checks can:

1. **checkpoint** — the newest signed checkpoint in the registry
   (:mod:`core.decisions.checkpoints`): the ledger is at least that long and has the same entry
   hash at its seq;
2. **witness** — what this client verified before (:class:`core.decisions.trust.Witness`): the
   ledger is at least that long and has the same entry hash at that seq; a checkpoint the client
   saw that is gone is reported;
3. **roster serial** — the roster's serial is not below the highest recorded in the verified
   ledger's pipeline records (:attr:`VerifiedState.max_roster_serial`), the newest checkpoint or
   the witness (:func:`core.decisions.roster.check_roster_serial`);
4. **registry cross-check** — every committed registry version has a ``registered`` entry;
   versions without one (a truncated ledger, or a deploy interrupted between push and register)
   are reported (:meth:`VerifiedState.unregistered`).

Every check reads the :class:`core.decisions.state.VerifiedState`, never raw rows, so a reader
verifies the ledger once. Use: ``anchors = read_anchors(...)`` *before* reading the ledger (a
checkpoint or witness written after the entries were read would look like a truncation), then
``report = check_anchors(state, anchors, roster=...)`` on the verified state, then
:func:`remember_verified` records the witness. :func:`verified_and_anchored` does the three in
that order over a :class:`core.decisions.verify.VerifiedLedger` (what ``kfm status``, the
decision commands and the dashboard call). Failures 1-3 raise (:class:`core.errors.LedgerError`,
:class:`core.errors.RosterError`); the findings of 2 (checkpoint gone) and 4 are
:attr:`AnchorReport.warnings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.decisions.checkpoints import (
    VerifiedCheckpoint,
    check_against_checkpoint,
    newest_checkpoint,
)
from core.decisions.ledger import Ledger
from core.decisions.roster import TrustedRoster, check_roster_serial
from core.decisions.state import VerifiedState
from core.decisions.trust import TrustStore, Witness
from core.decisions.verify import VerifiedLedger
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
    state: VerifiedState, witness: Witness, *, source: str, checkpoint_seq: int
) -> list[str]:
    """Refuse a ledger shorter than ``witness`` or forked from it; warn of a checkpoint gone."""
    if state.head_seq < witness.seq:
        raise LedgerError(
            f"ledger truncated: this client verified it up to entry #{witness.seq}, it now ends "
            f"at #{state.head_seq}",
            file=source,
            field="seq",
            expected=f"at least {witness.seq} entries",
            found=f"{state.head_seq} entries",
            hint="rows were deleted from the ledger; restore them from a backup",
        )
    found = state.hash_at(witness.seq)
    if witness.seq > 0 and found != witness.entry_hash:
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


def check_anchors(state: VerifiedState, anchors: Anchors, *, roster: TrustedRoster) -> AnchorReport:
    """Run checks 1-4 of the module docstring on the verified ``state``; raise on a refusal."""
    checkpoint, witness = anchors.checkpoint, anchors.witness
    if checkpoint is not None:
        check_against_checkpoint(state, checkpoint)
    warnings: list[str] = []
    if witness is not None:
        warnings += check_witness(
            state,
            witness,
            source=anchors.witness_file,
            checkpoint_seq=0 if checkpoint is None else checkpoint.seq,
        )
    recorded: dict[str, int] = {}
    if state.max_roster_serial is not None:
        recorded["the ledger's pipeline records"] = state.max_roster_serial
    if checkpoint is not None:
        recorded[f"checkpoint #{checkpoint.seq} ({checkpoint.source})"] = (
            checkpoint.checkpoint.roster_serial
        )
    if witness is not None:
        recorded[f"this client's witness ({anchors.witness_file})"] = witness.roster_serial
    check_roster_serial(roster, recorded)
    unregistered = tuple(state.unregistered(anchors.registry_versions))
    if unregistered:
        warnings.append(
            "registry holds versions not registered in the ledger: "
            + ", ".join(unregistered)
            + " (a truncated ledger, or a deploy interrupted between push and register)"
        )
    return AnchorReport(
        root_fingerprint=anchors.root_fingerprint,
        head_seq=state.head_seq,
        head_hash=state.head_hash,
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
    seen = Witness(
        root=report.root_fingerprint,
        seq=report.head_seq,
        entry_hash=report.head_hash,
        checkpoint_seq=0 if newest is None else newest.seq,
        roster_serial=report.roster_serial,
        updated_at=now or datetime.now(UTC),
    )
    before = report.witness
    if before is not None and _same_state(before.advanced(seen), before):
        return before  # nothing new to remember: a reader does not rewrite the file
    return trust.record_witness(seen)


def _same_state(a: Witness, b: Witness) -> bool:
    return (a.seq, a.entry_hash, a.checkpoint_seq, a.roster_serial) == (
        b.seq,
        b.entry_hash,
        b.checkpoint_seq,
        b.roster_serial,
    )


def verified_and_anchored(
    verified: VerifiedLedger, ledger: Ledger, *, registry: Registry, trust: TrustStore
) -> tuple[VerifiedState, AnchorReport]:
    """The verified state of ``ledger``, checked against its anchors; the witness remembers it.

    Reads the anchors, then extends ``verified`` by what is new in ``ledger`` (one verification,
    incremental), then :func:`check_anchors` and :func:`remember_verified`. Raises the broken
    entry's error, or the refusal of a ledger behind its newest checkpoint or this client's
    witness, or of a roster older than one recorded.
    """
    anchors = read_anchors(registry=registry, roster=verified.roster, trust=trust)
    state = verified.refresh(ledger)
    report = check_anchors(state, anchors, roster=verified.roster)
    remember_verified(trust, report)
    return state, report
