"""Deterministic ONNX inference over gridded datasets.

Sessions are built with fixed thread counts and sequential execution, so the same inputs give
the same outputs. :func:`predict_dataset` runs the model over every (time, lat, lon) point of a
dataset, chunk by chunk along time; :func:`predict_grid` runs it on any target grid (the
reference downscaling model takes coordinates as inputs, so it can be run finer than its
training grid).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort
import xarray as xr

from core.candidate.features import GRID_DIMS, feature_block, regrid_inputs
from core.candidate.models import ModelMetadata
from core.errors import InferenceError

if TYPE_CHECKING:
    from core.candidate.load import Candidate


def make_session(onnx_path: Path, *, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime CPU session with fixed threads and sequential execution."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own untyped errors
        raise InferenceError(
            f"onnxruntime cannot load the model: {error}", file=str(onnx_path)
        ) from error


def run_matrix(session: ort.InferenceSession, metadata: ModelMetadata, x: np.ndarray) -> np.ndarray:
    """Run the model on a (samples, features) float32 matrix; returns a 1-D float64 array."""
    input_name = metadata.inputs[0].name
    output_name = metadata.outputs[0].name
    if x.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    (y,) = session.run([output_name], {input_name: np.ascontiguousarray(x, dtype=np.float32)})
    return np.asarray(y, dtype=np.float64).reshape(x.shape[0])


def predict_dataset(
    session: ort.InferenceSession,
    metadata: ModelMetadata,
    ds: xr.Dataset,
    *,
    chunk_times: int = 8,
    file: str = "",
    on_chunk: Callable[[int, int], None] | None = None,
) -> xr.DataArray:
    """Model output at every (time, lat, lon) point of ``ds``, computed ``chunk_times`` at a time."""
    features = metadata.inputs[0].features
    n_time = ds.sizes.get("time", 0)
    parts = []
    for start in range(0, n_time, chunk_times):
        block = ds.isel(time=slice(start, start + chunk_times))
        x = feature_block(block, features, file=file)
        y = run_matrix(session, metadata, x)
        parts.append(y.reshape(block.sizes["time"], block.sizes["lat"], block.sizes["lon"]))
        if on_chunk is not None:
            on_chunk(min(start + chunk_times, n_time), n_time)
    values = (
        np.concatenate(parts, axis=0) if parts else np.zeros((0, ds.sizes["lat"], ds.sizes["lon"]))
    )
    target = metadata.target
    return xr.DataArray(
        values,
        dims=GRID_DIMS,
        coords={d: ds[d].values for d in GRID_DIMS},
        name=metadata.outputs[0].name,
        attrs={"units": target.units, "standard_name": target.standard_name},
    )


def predict_grid(
    candidate: Candidate, lat: np.ndarray, lon: np.ndarray, *, threads: int = 1
) -> xr.DataArray:
    """Run the candidate's model over its validation period on any (lat, lon) target grid."""
    session = make_session(candidate.onnx_path, threads=threads)
    with xr.open_dataset(candidate.validation_path, engine="netcdf4") as ds:
        target_grid = regrid_inputs(ds.load(), lat, lon)
    return predict_dataset(
        session, candidate.metadata, target_grid, file=str(candidate.validation_path)
    )
