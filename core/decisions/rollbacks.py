"""The three files every rollback leaves in the registry, built from the verified state.

Every rollback — derived from a person's veto or request, or a pipeline-signed automatic one —
has a folder ``climate/rollbacks/<seq:08d>-<version>/`` (:func:`rollback_id`; ``seq`` is the
ledger entry that caused it) holding:

- ``rollback_report.json`` — the trigger, who decided and why, the record's digest and
  evidence digests, the version restored or that production is left empty (said plainly);
- ``drift_summary.json`` — the drift summary of the version's latest monitoring run before the
  rollback (read from the registry and checked against the digest its signed monitoring record
  holds), or a plain statement that there was none;
- ``sovereignty_conflict.json`` — for a steward's veto or request, the steward, the rule that
  makes it binding, and the regions of theirs the model's published output touches (from the
  version's ``sovereignty/report.json``); otherwise a plain statement that there is none.

:func:`rollback_files` is a pure function of the :class:`core.decisions.state.ChannelEvent`,
the version's facts and the registry's files: whoever writes them (the process that appended
the person's record, or a later :func:`write_missing_rollback_files`) writes the same bytes.
No key is needed. Automatic rollbacks pass ``drift_summary`` / ``sovereignty_conflict`` from
the monitoring or re-screening that found the breach: that is the extension point for richer
content (features and statistics, cells and rules); the digests of the files then go into the
rollback record's evidence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from core.decisions.records import EvidenceRef, VersionFacts
from core.decisions.state import ChannelEvent, VerifiedState
from core.errors import KfmError, RegistryError
from core.jsonio import dumps
from core.registry.layout import ROLLBACKS
from core.registry.versions import Registry

ROLLBACK_FILES: tuple[str, ...] = (
    "rollback_report.json",
    "drift_summary.json",
    "sovereignty_conflict.json",
)
STEWARD_RULE = (
    "a concerned steward's veto is binding: the model's footprint touches their region "
    "(CARE principle Authority to Control)"
)


def rollback_id(seq: int, version: str) -> str:
    """The folder name of the rollback caused by ledger entry ``seq``."""
    return f"{seq:08d}-{version}"


def rollback_files(
    registry: Registry,
    event: ChannelEvent,
    facts: VersionFacts,
    *,
    drift_summary: Mapping[str, Any] | None = None,
    sovereignty_conflict: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """The three files of ``event``'s rollback (see the module docstring), as bytes."""
    restored = (
        f"{event.production_after} restored to production"
        if event.production_after
        else "production left empty: there is no earlier good version to restore"
    )
    report = {
        "rollback_id": rollback_id(event.seq, event.version),
        "rolled_back": event.version,
        "production_before": event.production_before,
        "target_version": event.production_after,
        "production_after": event.production_after,
        "outcome": restored,
        "trigger": event.trigger,
        "automatic": not event.derived,
        "decided_by": {
            "actor": event.actor,
            "role": event.role,
            "reason": event.reason,
            "ledger_seq": event.seq,
            "recorded_at": event.recorded_at,
            "record_sha256": event.record_sha256,
        },
        "reason": f"{event.trigger} by {event.actor}: {event.reason}",
        "evidence": [{"name": e.name, "sha256": e.sha256} for e in event.evidence],
        "submitter": facts.submitter,
        "concerned_stewards": list(facts.concerned_stewards),
    }
    drift = dict(drift_summary) if drift_summary is not None else _latest_drift(registry, event)
    conflict = (
        dict(sovereignty_conflict)
        if sovereignty_conflict is not None
        else _steward_conflict(registry, event, facts)
    )
    return {
        "rollback_report.json": dumps(report).encode("utf-8"),
        "drift_summary.json": dumps(drift).encode("utf-8"),
        "sovereignty_conflict.json": dumps(conflict).encode("utf-8"),
    }


def evidence_of(event_id: str, files: Mapping[str, bytes]) -> list[EvidenceRef]:
    """The evidence references of a rollback's files (what an automatic rollback signs)."""
    return [
        EvidenceRef(name=f"rollbacks/{event_id}/{name}", sha256=hashlib.sha256(data).hexdigest())
        for name, data in sorted(files.items())
    ]


def write_rollback_once(registry: Registry, folder: str, files: Mapping[str, bytes]) -> list[str]:
    """Create the rollback's files; one already there must hold the same bytes (a retry)."""
    new = {}
    for name, data in files.items():
        key = f"{ROLLBACKS}/{folder}/{name}"
        if not registry.store.exists(key):
            new[name] = data
        elif registry.store.read(key) != data:
            raise RegistryError(
                "a rollback folder already holds other content",
                file=key,
                expected="no file, or the same bytes",
                found="a different file",
            )
    registry.write_rollback(folder, new)
    return sorted(f"{ROLLBACKS}/{folder}/{name}" for name in files)


def missing_rollback_files(registry: Registry, state: VerifiedState) -> list[str]:
    """The keys of rollback files the registry lacks, for every rollback in ``state``.

    A process stopped between a person's record and its rollback's files leaves some;
    :func:`write_missing_rollback_files` writes them.
    """
    return [
        f"{ROLLBACKS}/{folder}/{name}"
        for folder, names in _missing(registry, state)
        for name in names
    ]


def write_missing_rollback_files(registry: Registry, state: VerifiedState) -> list[str]:
    """Write the files of every rollback in ``state`` that the registry lacks; the keys written.

    Files are create-once: an existing one is never rewritten.
    """
    written: list[str] = []
    events = {rollback_id(e.seq, e.version): e for e in state.events if e.kind == "rollback"}
    for folder, names in _missing(registry, state):
        event = events[folder]
        files = rollback_files(registry, event, state.facts[event.version])
        written += registry.write_rollback(folder, {name: files[name] for name in names})
    return written


def _missing(registry: Registry, state: VerifiedState) -> list[tuple[str, list[str]]]:
    """(folder, missing file names) of every rollback in ``state`` with files missing."""
    found = []
    for event in state.events:
        if event.kind != "rollback":
            continue
        folder = rollback_id(event.seq, event.version)
        names = [
            name
            for name in ROLLBACK_FILES
            if not registry.store.exists(f"{ROLLBACKS}/{folder}/{name}")
        ]
        if names:
            found.append((folder, names))
    return found


def _latest_drift(registry: Registry, event: ChannelEvent) -> dict[str, Any]:
    run = event.last_run
    said = {"version": event.version, "rollback_seq": event.seq}
    ref = run.evidence_named("/drift_summary.json") if run is not None else None
    if run is None or ref is None:
        return {
            **said,
            "status": "no monitoring run",
            "said": f"{event.version} had no monitoring run with a drift summary before this "
            "rollback: no drift figures to report",
        }
    parts = ref.name.split("/")  # monitoring/<version>/<run id>/drift_summary.json
    base = {
        **said,
        "monitoring_seq": run.seq,
        "run_id": parts[2] if len(parts) == 4 else None,
        "breaches": list(run.breaches),
        "evidence": {"name": ref.name, "sha256": ref.sha256},
    }
    try:
        data = registry.read_run(event.version, parts[2], parts[3])
    except (KfmError, IndexError):
        return {
            **base,
            "status": "missing",
            "said": "the run's drift summary is not in the registry",
        }
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        return {
            **base,
            "status": "does not match its signed digest",
            "said": "the registry's copy of the drift summary was altered: not reported",
        }
    return {**base, "status": "latest monitoring run", "summary": json.loads(data)}


def _steward_conflict(
    registry: Registry, event: ChannelEvent, facts: VersionFacts
) -> dict[str, Any]:
    if event.role != "steward" or event.actor not in facts.concerned_stewards:
        who = "an automatic" if not event.derived else f"a {event.role}"
        return {
            "status": "none",
            "said": f"no sovereignty conflict: the rollback was {who} {event.trigger}, "
            "not a steward's",
            "trigger": event.trigger,
        }
    regions: list[dict[str, Any]] = []
    try:
        screen = json.loads(registry.read_file(event.version, "sovereignty/report.json"))
        for region in screen.get("regions", []):
            if region.get("steward_id") == event.actor:
                regions.append(
                    {
                        key: region.get(key)
                        for key in (
                            "region_id",
                            "nation",
                            "tier",
                            "cells_published",
                            "cells_suppressed",
                            "samples_withheld",
                            "labels",
                        )
                    }
                )
    except (KfmError, ValueError):
        regions = []
    return {
        "status": "conflict",
        "steward": event.actor,
        "trigger": event.trigger,
        "rule": STEWARD_RULE,
        "reason": event.reason,
        "regions": regions,
        "footprint": list(facts.footprint),
        "model_family": facts.model_family,
    }
