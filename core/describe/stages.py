"""The stages after training as PROV activities: deployment stages and ledger decisions.

:func:`deployment_stages` gives the :class:`~core.describe.lineage.StageRecord` of each stage
``kfm deploy`` runs on a candidate — validation (gates), signing, sovereignty screening and
push — so ``provenance.json`` reads training data → training → model → evaluation → validation
→ signing → describe → screening → push. Their times are **derived** (``timing="derived"``):
the end of training plus a fixed offset per stage, never the clock, because ``kfm ci`` rebuilds a
deployment and compares the bytes (real wall-clock times are in the ledger, and in the registry
record's ``pushed_at``). Every entity a stage generates carries the SHA-256 multihash of the file
that proves it (``gates.json``, ``model.sig``, ``sovereignty/*``).

:func:`decision_stages` turns ledger entries (:class:`core.decisions.ledger.LedgerEntry`) about a version
into PROV activities with their **recorded** times: attestations, registrations, approvals,
vetoes, waivers, resolutions, rollbacks and monitoring runs, each by its actor in its role,
using the registry version and generating the signed decision record; the promotions and
rollbacks the verified replay derives from them (:class:`core.decisions.state.ChannelEvent`)
are activities of their own, informed by the entry that caused them. :func:`lineage_with_decisions`
appends them to a version's stored ``provenance.json`` and returns the PROV-JSON data: what the
dashboard's lineage page shows (training data → ... → push → decisions).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.candidate.load import Candidate
from core.describe.lineage import (
    AgentRef,
    EntityRef,
    LineageIds,
    StageRecord,
    add_stage,
    model_entity_id,
    prov_json,
    read_prov_json,
    training_document,
    training_end,
)
from core.errors import DescribeError
from core.registry.layout import GATES_FILE, SIGNATURE_FILE, SOVEREIGNTY_DIR, version_prefix
from core.signing.digests import multihash, sha256_file

if TYPE_CHECKING:
    from core.decisions.ledger import LedgerEntry
    from core.decisions.state import ChannelEvent

STAGE_OFFSETS: dict[str, timedelta] = {
    "validation": timedelta(minutes=1),
    "signing": timedelta(minutes=2),
    "screening": timedelta(minutes=3),
    "push": timedelta(minutes=4),
}
"""Derived start of each deployment stage after the end of training (each lasts no time)."""
SCREEN_FILES = ("published.geojson", "report.json", "care.json", "sovereignty_conflict.json")
DECISION_STAGE_KINDS: dict[str, str] = {
    "gates-attested": "attestation",
    "registered": "registration",
    "approve": "approval",
    "veto": "veto",
    "waive": "waiver",
    "resolve": "resolution",
    "rollback": "rollback",
    "request-rollback": "rollback-request",
    "monitoring": "monitoring",
}
"""Ledger decision kind → PROV stage kind (``kfm:Approval``, ``kfm:Veto``, ...)."""


def deployment_stages(
    candidate: Candidate,
    *,
    gates_json: bytes,
    signature: Path | None = None,
    screen_dir: Path | None = None,
) -> list[StageRecord]:
    """Validation, signing (when ``signature`` is given), screening (when ``screen_dir`` is)
    and push, with derived times; pass them to :func:`core.describe.describe_candidate`."""
    md = candidate.metadata
    ids = LineageIds(md)
    doc = training_document(candidate)
    model = EntityRef(id=model_entity_id(doc, candidate))
    trained = training_end(doc, md)
    pipeline = AgentRef(id=ids.pipeline, label="kfm pipeline")
    passed = _gates_passed(gates_json)

    def stage(kind: str, label: str, **fields: Any) -> StageRecord:
        at = trained + STAGE_OFFSETS[kind]
        return StageRecord(
            kind=kind,
            id=ids.activity(kind),
            label=label,
            started=at,
            ended=at,
            agent=pipeline,
            timing="derived",
            **fields,
        )

    gates = EntityRef(
        id=ids.gate_results,
        label=GATES_FILE,
        type="kfm:GateResults",
        attributes={"kfm:checksum": multihash(hashlib.sha256(gates_json).hexdigest())},
    )
    stages = [
        stage(
            "validation",
            f"validation gates under the workspace policy ({GATES_FILE})",
            used=(model, EntityRef(id=ids.validation_data)),
            generated=(gates,),
            attributes={"kfm:passed": passed},
        )
    ]
    pushed = [model, EntityRef(id=ids.stac_item), EntityRef(id=ids.gate_results)]
    if signature is not None:
        stages.append(
            stage(
                "signing",
                "model-signing bundle over every file of the model (pipeline key)",
                used=(model,),
                generated=(
                    EntityRef(
                        id=ids.signature,
                        label=SIGNATURE_FILE,
                        type="kfm:Signature",
                        attributes={"kfm:checksum": sha256_file(signature).multihash},
                    ),
                ),
            )
        )
        pushed.append(EntityRef(id=ids.signature))
    if screen_dir is not None:
        outputs = tuple(
            EntityRef(
                id=f"kfm:sovereignty/{ids.tag}/{name}",
                label=f"{SOVEREIGNTY_DIR}/{name}",
                type="kfm:ScreenOutput",
                attributes={"kfm:checksum": sha256_file(screen_dir / name).multihash},
            )
            for name in SCREEN_FILES
            if (screen_dir / name).is_file()
        )
        if not outputs:
            raise DescribeError(
                "the screen wrote nothing",
                file=str(screen_dir),
                expected=list(SCREEN_FILES[:3]),
                found=[],
            )
        stages.append(
            stage(
                "screening",
                "sovereignty screen of the model's outputs over its validation period (H3)",
                used=(model, EntityRef(id=ids.validation_data)),
                generated=outputs,
            )
        )
        pushed += [EntityRef(id=o.id) for o in outputs]
    stages.append(
        stage(
            "push",
            f"push to the immutable registry as {version_prefix(md.version)}",
            used=tuple(pushed),
            generated=(
                EntityRef(
                    id=ids.registry_version,
                    label=version_prefix(md.version),
                    type="kfm:RegistryVersion",
                    attributes={"kfm:version": md.version},
                ),
            ),
        )
    )
    return stages


def _gates_passed(gates_json: bytes) -> bool:
    try:
        passed = json.loads(gates_json)["passed"]
    except (ValueError, KeyError, TypeError) as error:
        raise DescribeError(
            "gate report is unreadable",
            file="gates.json",
            field="passed",
            expected="a gate report with 'passed'",
            found=f"{type(error).__name__}: {error}",
        ) from error
    if not isinstance(passed, bool):
        raise DescribeError(
            "gate report 'passed' is not a boolean",
            file="gates.json",
            field="passed",
            expected="true or false",
            found=passed,
        )
    return passed


# --------------------------------------------------------------------------- decisions
def decision_stages(
    entries: Iterable[LedgerEntry],
    *,
    name: str,
    version: str,
    events: Iterable[ChannelEvent] = (),
) -> list[StageRecord]:
    """One activity per ledger entry about ``version`` (its own, and rollbacks to it), and
    one per derived promotion or rollback of it (``events``)."""
    ids = LineageIds.from_tag(f"{name}-{version}")
    stages = []
    for entry in sorted(entries, key=lambda e: e.seq):
        if version not in (entry.version, entry.target_version):
            continue
        kind = DECISION_STAGE_KINDS.get(entry.kind)
        if kind is None:
            raise DescribeError(
                "unknown decision kind in the ledger",
                file=f"ledger entry {entry.seq}",
                field="kind",
                expected=sorted(DECISION_STAGE_KINDS),
                found=entry.kind,
            )
        at = _entry_time(entry)
        attributes: dict[str, str | int | bool | float] = {
            "kfm:seq": entry.seq,
            "kfm:actor": entry.actor,
            "kfm:role": entry.role,
            "kfm:version": entry.version,
        }
        if entry.target_version:
            attributes["kfm:target_version"] = entry.target_version
        reason = _reason(entry)
        if reason:
            attributes["kfm:reason"] = reason
        actor = _safe(entry.actor)
        stages.append(
            StageRecord(
                kind=kind,
                id=ids.activity(f"{kind}/{entry.seq}"),
                label=f"{entry.kind} by {entry.actor} ({entry.role})",
                started=at,
                ended=at,
                agent=AgentRef(
                    id=f"kfm:agent/{actor}",
                    label=entry.actor,
                    kind="software" if entry.role == "pipeline" else "person",
                ),
                used=(EntityRef(id=ids.registry_version),),
                generated=(
                    EntityRef(
                        id=f"kfm:decision/{ids.tag}/{entry.seq}",
                        label=f"signed {entry.kind} record (ledger entry {entry.seq})",
                        type="kfm:DecisionRecord",
                        attributes={"kfm:entry_hash": entry.entry_hash},
                    ),
                ),
                attributes=attributes,
            )
        )
    for event in events:
        if event.version != version or not event.derived:
            continue
        at = datetime.fromisoformat(event.recorded_at.replace("Z", "+00:00"))
        stages.append(
            StageRecord(
                kind=event.kind,
                id=ids.activity(f"{event.kind}/{event.seq}-derived"),
                label=f"{event.kind} of {event.version} derived from ledger entry {event.seq}",
                started=at,
                ended=at,
                agent=AgentRef(id="kfm:agent/verified-replay", label="verified replay"),
                used=(EntityRef(id=f"kfm:decision/{ids.tag}/{event.seq}"),),
                informed_by=(ids.activity(f"{DECISION_STAGE_KINDS[event.cause]}/{event.seq}"),),
                attributes={
                    "kfm:seq": event.seq,
                    "kfm:version": event.version,
                    "kfm:derived": True,
                    "kfm:production_after": event.production_after or "",
                    "kfm:reason": event.said,
                },
            )
        )
    return stages


def lineage_with_decisions(
    provenance_json: str | bytes,
    entries: Iterable[LedgerEntry],
    *,
    name: str,
    version: str,
    events: Iterable[ChannelEvent] = (),
) -> dict[str, Any]:
    """A version's stored ``provenance.json`` with its ledger decisions appended (PROV-JSON).

    ``events`` are the verified state's channel events: derived promotions and rollbacks are
    added as activities informed by the entry that caused them.

    Decisions are informed by the push activity when the provenance records one.
    """
    text = (
        provenance_json.decode("utf-8") if isinstance(provenance_json, bytes) else provenance_json
    )
    doc = read_prov_json(text, file="provenance.json", what="stored provenance")
    ids = LineageIds.from_tag(f"{name}-{version}")
    push = ids.activity("push")
    informed = (push,) if doc.get_record(push) else ()
    if not doc.get_record(ids.registry_version):
        doc.entity(ids.registry_version, {"kfm:version": version})
    for stage in decision_stages(entries, name=name, version=version, events=events):
        if not stage.informed_by:
            stage = stage.model_copy(update={"informed_by": informed})
        add_stage(doc, stage)
    data: dict[str, Any] = json.loads(prov_json(doc))
    return data


def _entry_time(entry: LedgerEntry) -> datetime:
    try:
        return datetime.fromisoformat(entry.time.replace("Z", "+00:00"))
    except ValueError as error:
        raise DescribeError(
            "ledger entry time is not ISO 8601",
            file=f"ledger entry {entry.seq}",
            field="time",
            expected="2026-11-01T12:00:00Z",
            found=entry.time,
        ) from error


def _reason(entry: LedgerEntry) -> str:
    """The decision's reason from its signed statement ('' when the envelope has none)."""
    try:
        payload = entry.envelope_dict()["payload"]
        statement: Mapping[str, Any] = json.loads(base64.b64decode(payload))
        reason = statement["predicate"].get("reason", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""
    return reason if isinstance(reason, str) else ""


def _safe(actor: str) -> str:
    """A roster id as a qualified-name segment."""
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in actor) or "unknown"
