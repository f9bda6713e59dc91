"""A monitoring run on a registry version, recorded and acted on.

:func:`monitor_version` fetches what the run needs from the registry (after re-hashing the
version), runs :func:`core.monitoring.run.run_monitoring` on the batch, stores the run's files under
``climate/monitoring/<version>/<run id>/`` (create-once, ``run.json`` last), appends a
pipeline-signed ``monitoring`` record whose evidence is the digests of those files and whose
``breaches`` name what the run breached (``drift``, ``telemetry``), and — when the version is in
production — rolls back to the last good version with
:func:`core.decisions.engine.rollback_to_last_good_version` (which writes
``rollback_report.json``, ``drift_summary.json`` and ``sovereignty_conflict.json``). A breach of
a version awaiting decisions blocks its promotion until a later in-bounds run or a
working-group ``resolve``; an in-bounds run closes the version's open breaches. After each of
its appends it checkpoints the ledger head (:func:`core.decisions.checkpoints.checkpoint_head`):
monitoring holds the pipeline key.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.candidate.load import validate_record
from core.candidate.models import ModelMetadata
from core.decisions.checkpoints import checkpoint_head
from core.decisions.engine import (
    DecisionEngine,
    RollbackOutcome,
    rollback_to_last_good_version,
)
from core.decisions.records import BreachKind, EvidenceRef
from core.errors import RegistryError
from core.jsonio import dumps
from core.monitoring.otel import TelemetryConfig
from core.monitoring.run import RUN_FILES, DeployedModel, MonitoringRun, run_monitoring
from core.policy import MonitoringPolicy
from core.registry.layout import METADATA_FILE, MODEL_FILE, version_key, version_prefix

REFERENCE_FILE = (
    "data/reference.nc"  # the drift reference at ModelMetadata.reference_data's default
)
NEEDED_FILES = (MODEL_FILE, METADATA_FILE, REFERENCE_FILE)


@dataclass(frozen=True)
class MonitorOutcome:
    """A run, its ledger entry, and the rollback it caused (if any)."""

    run: MonitoringRun
    ledger_seq: int
    rollback: RollbackOutcome | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.run.summary(),
            "ledger_seq": self.ledger_seq,
            "rolled_back": self.rollback is not None,
            "rollback": None
            if self.rollback is None
            else {
                "rollback_id": self.rollback.rollback_id,
                "rolled_back": self.rollback.rolled_back,
                "target_version": self.rollback.target_version,
                "trigger": self.rollback.trigger,
            },
            "note": self.note,
        }


def fetch_deployed_model(engine: DecisionEngine, version: str, into: Path) -> DeployedModel:
    """Verify ``version`` in the registry and copy what monitoring needs into ``into``."""
    report = engine.registry.verify(version)
    if not report.ok:
        raise RegistryError(
            "registry version does not verify; refusing to monitor it",
            field=version,
            expected="every stored file matching its record",
            found="; ".join(report.problems[:3]),
        )
    record = engine.registry.show(version)
    stored = record.manifest.by_name()
    for name in NEEDED_FILES:
        if name not in stored:
            raise RegistryError(
                "registry version lacks a file monitoring needs",
                file=version_prefix(version),
                field=name,
                expected=list(NEEDED_FILES),
                found=sorted(stored),
            )
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(engine.registry.read_file(version, name))
    metadata = validate_record(
        ModelMetadata,
        json.loads((into / METADATA_FILE).read_text(encoding="utf-8")),
        file=version_key(version, METADATA_FILE),
    )
    return DeployedModel(
        version=version,
        digest=record.subject.root_digest,
        onnx_path=into / MODEL_FILE,
        metadata=metadata,
        reference_path=into / REFERENCE_FILE,
    )


def new_run_id(version: str, now: datetime) -> str:
    """A run id that sorts in creation order: UTC second, version, then nanoseconds within it."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{version}-{time.time_ns() % 1_000_000_000:09d}"


def monitor_version(
    engine: DecisionEngine,
    version: str,
    batch: Path,
    policy: MonitoringPolicy,
    *,
    telemetry_config: TelemetryConfig | None = None,
    now: datetime | None = None,
) -> MonitorOutcome:
    """Run, store, record and — on a breach of a production version — roll back."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    run_id = new_run_id(version, now)
    with tempfile.TemporaryDirectory(prefix="kfm-monitor-") as work:
        model = fetch_deployed_model(engine, version, Path(work) / "model")
        run = run_monitoring(
            model,
            batch,
            policy,
            Path(work) / "run",
            run_id=run_id,
            telemetry_config=telemetry_config,
            started=now,
        )
        files = {name: (run.out_dir / name).read_bytes() for name in RUN_FILES}
        files["run.json"] = dumps(run.summary()).encode("utf-8")
        engine.registry.write_run(version, run_id, files)
    evidence = [
        EvidenceRef(
            name=f"monitoring/{version}/{run_id}/{name}", sha256=hashlib.sha256(data).hexdigest()
        )
        for name, data in sorted(files.items())
    ]
    verdict = (
        "; ".join(run.breaches) if run.breaches else "within the policy's drift and energy limits"
    )
    breaches: list[BreachKind] = []
    if run.drift_breaches:
        breaches.append("drift")
    if run.telemetry_breaches:
        breaches.append("telemetry")
    entry = engine.record_monitoring(
        version, f"monitoring run {run_id} on {batch.name}: {verdict}", evidence, breaches=breaches
    )
    _checkpoint(engine)
    if not run.needs_rollback:
        return MonitorOutcome(
            run, entry.seq, None, f"within bounds: no open breach of {version} remains"
        )
    state = engine.state()
    if state.production != version:
        return MonitorOutcome(
            run,
            entry.seq,
            None,
            f"breach recorded; no rollback because {version} is not in production "
            f"(production: {state.production or 'none'}); it cannot be promoted until a later "
            "in-bounds run or a working-group resolve",
        )
    outcome = rollback_to_last_good_version(
        engine,
        trigger=breaches[0],
        version=version,
        reason=f"monitoring run {run_id}: {verdict}",
        drift_summary=json.loads(files["drift_summary.json"]),
    )
    _checkpoint(engine)
    target = outcome.target_version or "no earlier good version (production is now empty)"
    return MonitorOutcome(run, entry.seq, outcome, f"rolled back {version} to {target}")


def _checkpoint(engine: DecisionEngine) -> None:
    """Sign the ledger head just appended to (the pipeline key is the engine's)."""
    checkpoint_head(engine)


def run_history(engine: DecisionEngine, version: str) -> list[dict[str, Any]]:
    """Every completed monitoring run of ``version``: drift per feature, energy, carbon."""
    rows = []
    for run_id in engine.registry.list_runs(version):
        rows.append(json.loads(engine.registry.read_run(version, run_id, "run.json")))
    return rows
