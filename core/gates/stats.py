"""Shared computations of the gates: chunked validation statistics and the drift report.

Both are built from the candidate and the policy, computed once per run by
:class:`core.gates.base.GateContext`, and read by several gates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from core.candidate.features import feature_block
from core.errors import GateError
from core.gates.drift_stats import DriftReport, drift_report
from core.gates.validation import ChunkJob, ImpactIndex, ValidationStats, compute_validation_stats

if TYPE_CHECKING:
    from core.candidate.load import Candidate
    from core.candidate.models import FeatureSpec
    from core.policy import Policy

ProgressHook = Callable[[str, int, int], None]

# Impact-gate parameter -> (index name, kind). The thresholds themselves live in the policy.
IMPACT_INDEX_PARAMETERS: dict[str, tuple[str, str]] = {
    "frost_below_k": ("frost_count", "count_below"),
    "severe_cold_below_k": ("severe_cold_count", "count_below"),
    "heat_above_k": ("heat_count", "count_above"),
    "heating_base_k": ("heating_degree_days", "degree_days_below"),
    "melt_base_k": ("melt_degree_days", "degree_days_above"),
}


def impact_indices(table: dict[str, float | int | bool | str]) -> tuple[ImpactIndex, ...]:
    """The impact indices a policy's ``[gates.impact]`` table defines."""
    return tuple(
        ImpactIndex(name=name, kind=kind, threshold_k=float(table[key]))
        for key, (name, kind) in IMPACT_INDEX_PARAMETERS.items()
        if key in table
    )


def compute_candidate_stats(
    candidate: Candidate,
    policy: Policy,
    *,
    client: Any = None,
    chunk_times: int | None = None,
    progress: ProgressHook | None = None,
) -> ValidationStats:
    """Chunked statistics of the candidate's model on its validation data."""
    meta = candidate.metadata
    job = ChunkJob(
        onnx_path=str(candidate.onnx_path),
        input_name=meta.inputs[0].name,
        output_name=meta.outputs[0].name,
        features=meta.inputs[0].features,
        target=meta.target.variable,
        baseline=meta.baseline_variable,
        indices=impact_indices(policy.gate_table("impact")),
    )

    def chunks_done(done: int, total: int) -> None:
        if progress is not None:
            progress("validation chunks", done, total)

    return compute_validation_stats(
        job,
        candidate.validation_path,
        chunk_times=chunk_times,
        client=client,
        progress=chunks_done,
    )


def sampled_features(
    path: Path, features: Sequence[FeatureSpec], max_rows: int
) -> tuple[np.ndarray, int]:
    """Model inputs of evenly spaced time steps of ``path`` (at most ``max_rows`` rows), and the
    number of rows of the whole file."""
    with xr.open_dataset(path, engine="netcdf4", chunks={"time": 1}) as ds:
        cells = int(ds.sizes["lat"] * ds.sizes["lon"])
        n_time = int(ds.sizes["time"])
        if n_time == 0 or cells == 0:
            raise GateError(
                "dataset is empty", file=str(path), field="time", expected=">= 1 step", found=0
            )
        keep = max(1, min(n_time, max_rows // cells))
        idx = np.unique(np.linspace(0, n_time - 1, keep).round().astype(np.int64))
        return feature_block(ds.isel(time=idx).load(), features, file=str(path)), n_time * cells


def compute_candidate_drift(
    candidate: Candidate, *, bins: int, max_rows: int, progress: ProgressHook | None = None
) -> DriftReport:
    """Drift of the validation inputs against the training reference (``data/reference.nc``)."""
    features = candidate.metadata.inputs[0].features
    names = [f.name for f in features]
    if progress:
        progress("drift", 0, 1)
    reference, _ = sampled_features(candidate.reference_path, features, max_rows)
    batch, _ = sampled_features(candidate.validation_path, features, max_rows)
    report = drift_report(reference, batch, names, bins=bins, max_rows=max_rows)
    if progress:
        progress("drift", 1, 1)
    return report
