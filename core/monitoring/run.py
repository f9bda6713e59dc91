"""Monitoring stage: run a deployed model on a production batch and watch it.

:func:`run_monitoring` takes a :class:`DeployedModel` (what a registry version provides), a
batch (netCDF with the model's input variables) and the policy's ``[monitoring]`` table, and:

1. emits OpenTelemetry spans (load, inference per chunk, drift, XAI, energy) and metrics, with the
   model version and digest as attributes (``core.monitoring.otel``);
2. computes drift of the batch against the version's training reference with the same code as
   the drift gate (``core.gates.drift_stats.drift_report``);
3. estimates the run's energy and carbon with the same estimator as the candidate's telemetry
   (``core.monitoring.energy``; wall-clock duration measured, power estimated: labelled ``estimated``);
4. explains a seeded sample of the batch with SHAP (exact Shapley values over the ONNX model,
   5 features) and writes a PROV record of the run.

It returns a :class:`MonitoringRun` whose ``breaches`` say whether the policy asks for a rollback;
acting on it (a signed monitoring record, a signed rollback) is ``core.decisions.engine``' job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from prov.model import ProvDocument

from core.candidate.features import feature_block
from core.candidate.inference import make_session, predict_dataset, run_matrix
from core.candidate.models import ModelMetadata, Telemetry
from core.errors import InferenceError
from core.gates.drift_stats import DriftReport, drift_report
from core.jsonio import write_json
from core.monitoring.energy import EnergyAssumptions, estimate_energy_kwh, estimate_run
from core.monitoring.otel import Telemetry as Otel
from core.monitoring.otel import TelemetryConfig
from core.policy import MonitoringPolicy

XAI_BACKGROUND = 50
RUN_FILES = (
    "drift_summary.json",
    "telemetry.json",
    "xai_summary.json",
    "run.prov.json",
    "spans.jsonl",
)


@dataclass(frozen=True)
class DeployedModel:
    """What monitoring needs from a registry version (files already fetched locally)."""

    version: str
    digest: str
    onnx_path: Path
    metadata: ModelMetadata
    reference_path: Path


@dataclass
class MonitoringRun:
    """The outcome of one monitoring run and where its artifacts were written."""

    run_id: str
    version: str
    batch: str
    started: datetime
    n_predictions: int
    drift: DriftReport
    drift_breaches: list[str]
    telemetry: Telemetry
    telemetry_breaches: list[str]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def breaches(self) -> list[str]:
        return [f"drift: {b}" for b in self.drift_breaches] + [
            f"telemetry: {b}" for b in self.telemetry_breaches
        ]

    @property
    def needs_rollback(self) -> bool:
        return bool(self.breaches)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "version": self.version,
            "batch": self.batch,
            "started": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "n_predictions": self.n_predictions,
            "drift": {
                f.name: {
                    "psi": round(f.psi, 6),
                    "ks_statistic": round(f.ks_statistic, 6),
                    "wasserstein_std": round(f.wasserstein_std, 6),
                }
                for f in self.drift.features
            },
            "energy_kwh": self.telemetry.energy_kwh,
            "emissions_kg_co2e": self.telemetry.emissions_kg_co2e,
            "telemetry_method": self.telemetry.method,
            "duration_s": self.telemetry.duration_s,
            "grid_intensity_g_per_kwh": self.telemetry.grid_intensity_g_per_kwh,
            "pue": self.telemetry.pue,
            "breaches": self.breaches,
            "needs_rollback": self.needs_rollback,
        }


def _open_batch(path: Path) -> xr.Dataset:
    if not path.is_file():
        raise InferenceError(
            "batch file not found", file=str(path), expected="a netCDF file", found="nothing"
        )
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except Exception as error:
        raise InferenceError(
            "batch is not a readable netCDF file",
            file=str(path),
            found=f"{type(error).__name__}: {str(error)[:120]}",
        ) from error


def run_monitoring(
    model: DeployedModel,
    batch_path: Path,
    policy: MonitoringPolicy,
    out_dir: Path,
    *,
    run_id: str,
    telemetry_config: TelemetryConfig | None = None,
    assumptions: EnergyAssumptions | None = None,
    started: datetime | None = None,
) -> MonitoringRun:
    """Run the model on a batch with spans, drift, energy, XAI and PROV; write the run's files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = started or datetime.now(UTC).replace(microsecond=0)
    spans_path = out_dir / "spans.jsonl"
    config = telemetry_config or TelemetryConfig()
    otel = Otel(
        TelemetryConfig(
            jsonl_path=spans_path,
            otlp_endpoint=config.otlp_endpoint,
            otlp_timeout_s=config.otlp_timeout_s,
        ),
        attributes={"kfm.model.version": model.version, "kfm.model.digest": model.digest},
    )
    attrs = {
        "kfm.model.version": model.version,
        "kfm.model.digest": model.digest,
        "kfm.run.id": run_id,
    }
    tracer = otel.tracer
    meter = otel.meter()
    chunk_seconds = meter.create_histogram("kfm.inference.chunk.duration", unit="s")
    predictions_counter = meter.create_counter("kfm.inference.predictions", unit="1")
    clock0 = time.perf_counter()
    features = model.metadata.inputs[0].features
    names = [f.name for f in features]
    try:
        with tracer.start_as_current_span("kfm.monitor.run", attributes=attrs) as run_span:
            with tracer.start_as_current_span("kfm.monitor.load", attributes=attrs):
                session = make_session(model.onnx_path)
                batch = _open_batch(batch_path)
                with xr.open_dataset(model.reference_path, engine="netcdf4") as ref_ds:
                    reference = feature_block(
                        ref_ds.load(), features, file=str(model.reference_path)
                    )
                x_batch = feature_block(batch, features, file=str(batch_path))

            last = [time.perf_counter()]

            def on_chunk(done: int, total: int) -> None:
                now = time.perf_counter()
                with tracer.start_as_current_span(
                    "kfm.monitor.inference.chunk",
                    attributes={
                        **attrs,
                        "kfm.chunk.done_times": done,
                        "kfm.chunk.total_times": total,
                    },
                ):
                    chunk_seconds.record(now - last[0], attrs)
                last[0] = now

            with tracer.start_as_current_span("kfm.monitor.inference", attributes=attrs):
                inference_start = time.perf_counter()
                output = predict_dataset(
                    session,
                    model.metadata,
                    batch,
                    chunk_times=policy.chunk_times,
                    file=str(batch_path),
                    on_chunk=on_chunk,
                )
                n_predictions = int(output.size)
                inference_seconds = max(time.perf_counter() - inference_start, 1e-6)
                predictions_counter.add(n_predictions, attrs)

            with tracer.start_as_current_span("kfm.monitor.drift", attributes=attrs) as drift_span:
                drift = drift_report(
                    reference,
                    x_batch,
                    names,
                    bins=policy.psi_bins,
                    max_rows=policy.sample_rows,
                    seed=0,
                )
                drift_breaches = drift.breaches(policy.drift_limits())
                for f in drift.features:
                    drift_span.set_attribute(f"kfm.drift.psi.{f.name}", f.psi)
                drift_span.set_attribute("kfm.drift.breaches", len(drift_breaches))

            with tracer.start_as_current_span("kfm.monitor.xai", attributes=attrs):
                xai = explain_sample(session, model.metadata, reference, x_batch, policy.xai_sample)

            with tracer.start_as_current_span(
                "kfm.monitor.energy", attributes=attrs
            ) as energy_span:
                duration = max(time.perf_counter() - clock0, 1e-6)
                telemetry = estimate_run(
                    run_id,
                    "monitoring",
                    duration,
                    assumptions,
                    notes=(
                        f"wall-clock duration measured ({duration:.3f} s); power estimated with Green "
                        f"Algorithms defaults, so the figures are estimates",
                    ),
                )
                # The anomaly screen looks at inference alone: XAI and start-up are not the model's cost.
                inference_kwh = estimate_energy_kwh(
                    inference_seconds, assumptions or EnergyAssumptions()
                )
                per_million = inference_kwh / max(n_predictions, 1) * 1e6
                telemetry_breaches = []
                if per_million > policy.energy_kwh_per_million_predictions_max:
                    telemetry_breaches.append(
                        f"inference energy {per_million:.4g} kWh per million predictions > "
                        f"{policy.energy_kwh_per_million_predictions_max:.4g}"
                    )
                energy_span.set_attribute("kfm.energy.kwh", telemetry.energy_kwh)
                energy_span.set_attribute("kfm.emissions.kg_co2e", telemetry.emissions_kg_co2e)
            run_span.set_attribute("kfm.breaches", len(drift_breaches) + len(telemetry_breaches))
    finally:
        otel.shutdown()

    result = MonitoringRun(
        run_id=run_id,
        version=model.version,
        batch=batch_path.name,
        started=started,
        n_predictions=n_predictions,
        drift=drift,
        drift_breaches=drift_breaches,
        telemetry=telemetry,
        telemetry_breaches=telemetry_breaches,
        out_dir=out_dir,
    )
    write_json(
        out_dir / "drift_summary.json",
        {
            "run_id": run_id,
            "version": model.version,
            "batch": batch_path.name,
            "limits": policy.drift_limits(),
            "breaches": drift_breaches,
            **drift.to_dict(),
        },
    )
    write_json(out_dir / "telemetry.json", telemetry.model_dump(mode="json"))
    write_json(out_dir / "xai_summary.json", {"run_id": run_id, "version": model.version, **xai})
    (out_dir / "run.prov.json").write_text(run_prov(result, model), encoding="utf-8")
    result.files = {name: out_dir / name for name in RUN_FILES}
    return result


def explain_sample(
    session: Any,
    metadata: ModelMetadata,
    reference: np.ndarray,
    batch: np.ndarray,
    n_sample: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Exact Shapley values (shap) of the ONNX model on a seeded sample of the batch."""
    import shap

    rng = np.random.default_rng(seed)
    background = reference[
        np.sort(
            rng.choice(reference.shape[0], min(XAI_BACKGROUND, reference.shape[0]), replace=False)
        )
    ]
    rows = np.sort(rng.choice(batch.shape[0], min(n_sample, batch.shape[0]), replace=False))

    def predict(x: np.ndarray) -> np.ndarray:
        return run_matrix(session, metadata, np.asarray(x, dtype=np.float32))

    explainer = shap.explainers.Exact(
        predict, shap.maskers.Independent(background, max_samples=XAI_BACKGROUND)
    )
    values = explainer(batch[rows])
    names = [f.name for f in metadata.inputs[0].features]
    mean_abs = np.abs(values.values).mean(axis=0)
    additivity = float(
        np.max(np.abs(values.base_values + values.values.sum(axis=1) - predict(batch[rows])))
    )
    return {
        "method": "shap",
        "explainer": "shap.explainers.Exact (ONNX model)",
        "shap_version": shap.__version__,
        "features": names,
        "sample_size": int(rows.size),
        "background_size": int(background.shape[0]),
        "seed": seed,
        "base_value": round(float(np.mean(values.base_values)), 6),
        "mean_abs_attribution": {
            n: round(float(v), 6) for n, v in zip(names, mean_abs, strict=True)
        },
        "additivity_error_max": additivity,
    }


def run_prov(run: MonitoringRun, model: DeployedModel) -> str:
    """PROV-JSON of a monitoring run: batch + model -> run -> drift, telemetry, XAI."""
    doc = ProvDocument()
    doc.add_namespace("kfm", "https://kfm.example/ns#")
    r = run.run_id
    end = run.started + timedelta(seconds=round(run.telemetry.duration_s, 3))
    activity = doc.activity(
        f"kfm:activity/monitoring/{r}",
        run.started,
        end,
        {"prov:type": "kfm:MonitoringRun", "kfm:version": model.version},
    )
    model_entity = doc.entity(
        f"kfm:model/{model.metadata.name}-{model.version}", {"kfm:digest": model.digest}
    )
    batch = doc.entity(f"kfm:batch/{r}/{run.batch}", {"prov:type": "kfm:Dataset"})
    agent = doc.agent("kfm:agent/pipeline", {"prov:type": "prov:SoftwareAgent"})
    doc.used(activity, model_entity, identifier=f"kfm:rel/{r}/used-model")
    doc.used(activity, batch, identifier=f"kfm:rel/{r}/used-batch")
    doc.wasAssociatedWith(activity, agent, identifier=f"kfm:rel/{r}/assoc")
    for name in ("drift_summary.json", "telemetry.json", "xai_summary.json"):
        entity = doc.entity(f"kfm:run/{r}/{name}")
        doc.wasGeneratedBy(entity, activity, identifier=f"kfm:rel/{r}/generated/{name}")
    return str(doc.serialize(format="json", indent=2, sort_keys=True)) + "\n"
