"""Shared computations of the gates: chunked validation statistics and the drift report.

Both are built from the candidate and the policy, computed once per run by
:class:`core.gates.base.GateContext`, and read by several gates.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from core.drift import DriftReport, drift_report
from core.errors import GateError
from core.features import feature_block
from core.validation import ChunkJob, ImpactIndex, ValidationStats, compute_validation_stats

if TYPE_CHECKING:
    from core.gates.base import GateContext

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


def compute_candidate_stats(ctx: GateContext) -> ValidationStats:
    """Chunked statistics of the candidate's model on its validation data."""
    meta = ctx.candidate.metadata
    job = ChunkJob(
        onnx_path=str(ctx.candidate.onnx_path),
        input_name=meta.inputs[0].name,
        output_name=meta.outputs[0].name,
        features=meta.inputs[0].features,
        target=meta.target.variable,
        baseline=meta.baseline_variable,
        indices=impact_indices(ctx.policy.gate_table("impact")),
    )
    hook = ctx.progress

    def progress(done: int, total: int) -> None:
        if hook is not None:
            hook("validation chunks", done, total)

    return compute_validation_stats(
        job,
        ctx.candidate.validation_path,
        chunk_times=ctx.chunk_times,
        client=ctx.client,
        progress=progress,
    )


def sampled_features(path: Path, ctx: GateContext, max_rows: int) -> tuple[np.ndarray, int]:
    """Model inputs of evenly spaced time steps of ``path`` (at most ``max_rows`` rows), and the
    number of rows of the whole file."""
    features = ctx.candidate.metadata.inputs[0].features
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


def compute_candidate_drift(ctx: GateContext, *, bins: int, max_rows: int) -> DriftReport:
    """Drift of the validation inputs against the training reference (``data/reference.nc``)."""
    names = [f.name for f in ctx.candidate.metadata.inputs[0].features]
    if ctx.progress:
        ctx.progress("drift", 0, 1)
    reference, _ = sampled_features(ctx.candidate.reference_path, ctx, max_rows)
    batch, _ = sampled_features(ctx.candidate.validation_path, ctx, max_rows)
    report = drift_report(reference, batch, names, bins=bins, max_rows=max_rows)
    if ctx.progress:
        ctx.progress("drift", 1, 1)
    return report
