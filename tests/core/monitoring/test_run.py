"""Monitoring runs on real batches: drift verdicts, spans, energy, XAI and PROV per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr

from core.candidate.load import load_candidate
from core.errors import InferenceError
from core.monitoring.batches import WARMING_K, make_batch
from core.monitoring.otel import TelemetryConfig
from core.monitoring.run import DeployedModel, run_monitoring
from core.policy import MonitoringPolicy


@pytest.fixture(scope="module")
def deployed(reference_candidate_dir: Path) -> DeployedModel:
    c = load_candidate(reference_candidate_dir)
    return DeployedModel("1.0.0", "ab" * 32, c.onnx_path, c.metadata, c.reference_path)


@pytest.fixture(scope="module")
def batches(
    reference_candidate_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("batches")
    validation = reference_candidate_dir / "data" / "validation.nc"
    return {
        k: make_batch(validation, k, folder / f"{k}.nc")
        for k in ("in-distribution", "warming", "southern")
    }


def test_in_distribution_batch_has_no_breach(
    deployed: DeployedModel, batches: dict[str, Path], tmp_path: Path
) -> None:
    """Held-out real times stay within the production drift and energy limits."""
    run = run_monitoring(
        deployed, batches["in-distribution"], MonitoringPolicy(), tmp_path, run_id="r1"
    )
    assert run.breaches == []
    assert not run.needs_rollback
    assert run.n_predictions == 4 * 25 * 53


def test_warming_batch_breaches_drift(
    deployed: DeployedModel, batches: dict[str, Path], tmp_path: Path
) -> None:
    """A +3 K warming of the coarse input is a drift breach on t_coarse, measured as ~3 K."""
    run = run_monitoring(deployed, batches["warming"], MonitoringPolicy(), tmp_path, run_id="r2")
    assert run.needs_rollback
    assert all(b.startswith("drift: t_coarse") for b in run.breaches)
    t = next(f for f in run.drift.features if f.name == "t_coarse")
    assert abs(t.wasserstein - WARMING_K) < 0.5
    summary = json.loads((tmp_path / "drift_summary.json").read_text())
    assert summary["breaches"] == run.drift_breaches


def test_southern_batch_breaches_on_latitude(
    deployed: DeployedModel, batches: dict[str, Path], tmp_path: Path
) -> None:
    """A batch from another region breaches on latitude as well as temperature."""
    run = run_monitoring(deployed, batches["southern"], MonitoringPolicy(), tmp_path, run_id="r3")
    assert any(b.startswith("drift: lat:") for b in run.breaches)


def test_energy_anomaly_is_a_telemetry_breach(
    deployed: DeployedModel, batches: dict[str, Path], tmp_path: Path
) -> None:
    """Inference energy above the policy's per-prediction limit is a telemetry breach."""
    policy = MonitoringPolicy(energy_kwh_per_million_predictions_max=1e-12)
    run = run_monitoring(deployed, batches["in-distribution"], policy, tmp_path, run_id="r4")
    assert run.telemetry_breaches and run.drift_breaches == []
    assert run.breaches[0].startswith("telemetry: inference energy")


def test_run_writes_spans_xai_prov_and_energy(
    deployed: DeployedModel,
    batches: dict[str, Path],
    tmp_path: Path,
    otlp_receiver,  # type: ignore[no-untyped-def]
) -> None:
    """Spans reach the file and the OTLP receiver; XAI, energy and PROV files are written."""
    config = TelemetryConfig(otlp_endpoint=otlp_receiver.endpoint)
    run = run_monitoring(
        deployed,
        batches["in-distribution"],
        MonitoringPolicy(chunk_times=1),
        tmp_path,
        run_id="r5",
        telemetry_config=config,
    )
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    names = [s["name"] for s in spans if s["kind"] == "span"]
    for stage in ("load", "inference", "drift", "xai", "energy"):
        assert f"kfm.monitor.{stage}" in names
    assert names.count("kfm.monitor.inference.chunk") == 4  # one per time step
    assert all(
        s["attributes"]["kfm.model.version"] == "1.0.0" for s in spans if s["kind"] == "span"
    )
    received = [s["name"] for s in otlp_receiver.spans]
    assert sorted(received) == sorted(names)
    assert otlp_receiver.spans[0]["attributes"]["kfm.model.digest"] == "ab" * 32
    xai = json.loads((tmp_path / "xai_summary.json").read_text())
    assert xai["additivity_error_max"] < 1e-6
    assert max(xai["mean_abs_attribution"], key=xai["mean_abs_attribution"].get) == "t_coarse"
    telemetry = json.loads((tmp_path / "telemetry.json").read_text())
    assert telemetry["method"] == "estimated" and telemetry["kind"] == "monitoring"
    assert run.telemetry.energy_kwh > 0
    prov = json.loads((tmp_path / "run.prov.json").read_text())
    assert any(k.endswith("monitoring/r5") for k in prov["activity"])


def test_missing_batch_and_missing_variable_are_clear(
    deployed: DeployedModel, batches: dict[str, Path], tmp_path: Path
) -> None:
    """A missing batch file, or one without the model's input variable, is a named error."""
    with pytest.raises(InferenceError, match="batch file not found"):
        run_monitoring(
            deployed, tmp_path / "nope.nc", MonitoringPolicy(), tmp_path / "a", run_id="r6"
        )
    broken = tmp_path / "broken.nc"
    with xr.open_dataset(batches["in-distribution"]) as ds:
        ds.load().drop_vars("t_coarse").to_netcdf(broken)
    with pytest.raises(InferenceError) as caught:
        run_monitoring(deployed, broken, MonitoringPolicy(), tmp_path / "b", run_id="r7")
    assert caught.value.field == "t_coarse"
