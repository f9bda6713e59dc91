"""core/gates/validation.py: chunked statistics equal a direct numpy computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from core.candidate.features import feature_block
from core.candidate.inference import make_session, run_matrix
from core.candidate.load import load_candidate
from core.gates.validation import ChunkJob, ImpactIndex, compute_validation_stats

INDICES = (
    ImpactIndex("frost", "count_below", 273.15),
    ImpactIndex("hdd", "degree_days_below", 291.15),
)


def job_for(root: Path) -> ChunkJob:
    c = load_candidate(root)
    m = c.metadata
    return ChunkJob(
        str(c.onnx_path),
        m.inputs[0].name,
        m.outputs[0].name,
        m.inputs[0].features,
        m.target.variable,
        m.baseline_variable,
        INDICES,
    )


def test_chunked_statistics_equal_numpy(reference_candidate_dir: Path) -> None:
    """RMSE, bias, quantiles and index counts from chunks of one step match in-memory numpy."""
    c = load_candidate(reference_candidate_dir)
    stats = compute_validation_stats(
        job_for(reference_candidate_dir), c.validation_path, chunk_times=1
    )
    assert stats.n_chunks == 4
    with xr.open_dataset(c.validation_path) as ds:
        ds = ds.load()
    pred = run_matrix(
        make_session(c.onnx_path), c.metadata, feature_block(ds, c.metadata.inputs[0].features)
    )
    obs = ds["air"].values.reshape(-1).astype(np.float64)
    w = np.broadcast_to(
        np.cos(np.deg2rad(ds["lat"].values))[None, :, None], ds["air"].shape
    ).reshape(-1)
    err = pred - obs
    assert np.sqrt(stats.wmean("w_err2")) == pytest.approx(
        np.sqrt(np.sum(w * err**2) / np.sum(w)), rel=1e-12
    )
    assert stats.wmean("w_err") == pytest.approx(np.sum(w * err) / np.sum(w), rel=1e-9)
    order = np.argsort(obs)
    cw = np.cumsum(w[order]) / np.sum(w)
    for q in (0.01, 0.5, 0.99):
        exact = obs[order][np.searchsorted(cw, q)]
        assert stats.quantile("obs", q) == pytest.approx(exact, abs=0.02)
    assert stats.stats.index_obs["frost"] == np.count_nonzero(obs < 273.15)
    assert stats.stats.index_pred["frost"] == np.count_nonzero(pred < 273.15)
    assert stats.stats.index_obs["hdd"] == pytest.approx(
        np.sum(w * np.maximum(291.15 - obs, 0)), rel=1e-9
    )
    assert stats.sample_hours == 6.0


def test_larger_than_one_chunk_file_is_reduced_in_pieces(
    reference_candidate_dir: Path, tmp_path: Path
) -> None:
    """A file of 12 steps reduced 5 steps at a time gives three chunks and the same sums as one chunk."""
    c = load_candidate(reference_candidate_dir)
    with xr.open_dataset(c.validation_path) as ds:
        big = xr.concat([ds.load()] * 3, dim="time")
    big = big.assign_coords(
        time=np.arange(12) * np.timedelta64(6, "h") + np.datetime64("2014-03-01")
    )
    path = tmp_path / "big.nc"
    big.to_netcdf(path)
    job = job_for(reference_candidate_dir)
    pieces = compute_validation_stats(job, path, chunk_times=5)
    whole = compute_validation_stats(job, path, chunk_times=12)
    assert (pieces.n_chunks, whole.n_chunks, pieces.stats.n) == (3, 1, 12 * 25 * 53)
    for key, value in whole.stats.sums.items():
        assert pieces.stats.sums[key] == pytest.approx(value, rel=1e-9)
    assert np.array_equal(pieces.stats.hist["obs_n"], whole.stats.hist["obs_n"])
