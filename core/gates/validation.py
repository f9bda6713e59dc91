"""Validation statistics of a candidate, computed chunk by chunk with xarray + dask.

The validation file is opened lazily with chunks along ``time``. Each chunk is turned into model
inputs, run through the ONNX model (deterministic session, one thread) and reduced to a
:class:`PartialStats`: weighted sums, sums of squares, spatial-anomaly products, fixed-bin
histograms (a quantile sketch with :data:`HIST_WIDTH` resolution) and impact-index sums. Partials
are merged in a fixed tree order, so the result is bit-identical whether the chunks ran on local
threads or on a ``dask.distributed`` cluster, and memory stays bounded by one chunk per worker
plus the histograms, whatever the size of the validation set.

Everything the accuracy, spatial-pattern, extremes and impact gates measure is derived from the
merged :class:`ValidationStats`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr

from core.candidate.features import GRID_DIMS, feature_block
from core.candidate.models import FeatureSpec
from core.errors import InferenceError

# Quantile sketch: fixed bins over a physically plausible near-surface temperature range.
HIST_LOW_K = 150.0
HIST_HIGH_K = 350.0
HIST_WIDTH = 0.01  # K; quantiles are exact to within one bin width
HIST_BINS = int(round((HIST_HIGH_K - HIST_LOW_K) / HIST_WIDTH))
TARGET_CHUNK_SAMPLES = 1 << 20  # ~1M samples per chunk when chunk_times is not given
MERGE_GROUP = 4  # partials are merged in groups of this size, then the groups left to right

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImpactIndex:
    """A derived hazard or hydrology index: a count (``count_below``/``count_above``) or degree-days."""

    name: str
    kind: str  # "count_below" | "count_above" | "degree_days_below" | "degree_days_above"
    threshold_k: float


@dataclass(frozen=True)
class ChunkJob:
    """Everything a worker needs to reduce one chunk (small and picklable)."""

    onnx_path: str
    input_name: str
    output_name: str
    features: tuple[FeatureSpec, ...]
    target: str
    baseline: str | None
    indices: tuple[ImpactIndex, ...]


@dataclass
class PartialStats:
    """Mergeable sums over the samples of one or more chunks."""

    n: int = 0
    n_times: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    hist: dict[str, np.ndarray] = field(default_factory=dict)
    index_obs: dict[str, float] = field(default_factory=dict)
    index_pred: dict[str, float] = field(default_factory=dict)
    index_base: dict[str, float] = field(default_factory=dict)
    outside_range: int = 0

    def merge(self, other: PartialStats) -> PartialStats:
        """A new partial holding the sums of both (order-preserving, so deterministic)."""

        def add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
            return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}

        return PartialStats(
            n=self.n + other.n,
            n_times=self.n_times + other.n_times,
            sums=add(self.sums, other.sums),
            hist={
                k: _add_arrays(self.hist.get(k), other.hist.get(k))
                for k in sorted(set(self.hist) | set(other.hist))
            },
            index_obs=add(self.index_obs, other.index_obs),
            index_pred=add(self.index_pred, other.index_pred),
            index_base=add(self.index_base, other.index_base),
            outside_range=self.outside_range + other.outside_range,
        )


def _add_arrays(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    if a is None:
        assert b is not None
        return b.copy()
    return a.copy() if b is None else a + b


@functools.lru_cache(maxsize=4)
def _session(onnx_path: str) -> Any:
    from core.candidate.inference import make_session

    return make_session(Path(onnx_path), threads=1)


def _run(job: ChunkJob, x: np.ndarray) -> np.ndarray:
    session = _session(job.onnx_path)
    if x.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    (y,) = session.run(
        [job.output_name], {job.input_name: np.ascontiguousarray(x, dtype=np.float32)}
    )
    return np.asarray(y, dtype=np.float64).reshape(x.shape[0])


def _histograms(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    idx = np.floor((values - HIST_LOW_K) / HIST_WIDTH).astype(np.int64)
    outside = int(np.count_nonzero((idx < 0) | (idx >= HIST_BINS)))
    np.clip(idx, 0, HIST_BINS - 1, out=idx)
    counts = np.bincount(idx, minlength=HIST_BINS).astype(np.int64)
    weighted = np.bincount(idx, weights=weights, minlength=HIST_BINS)
    return counts, weighted, outside


def _index_value(index: ImpactIndex, values: np.ndarray, weights: np.ndarray) -> float:
    t = index.threshold_k
    if index.kind == "count_below":
        return float(np.count_nonzero(values < t))
    if index.kind == "count_above":
        return float(np.count_nonzero(values > t))
    if index.kind == "degree_days_below":
        return float(np.sum(np.maximum(t - values, 0.0) * weights))
    if index.kind == "degree_days_above":
        return float(np.sum(np.maximum(values - t, 0.0) * weights))
    raise InferenceError(
        "unknown impact index kind",
        field=index.name,
        expected="count_below, count_above, degree_days_below, degree_days_above",
        found=index.kind,
    )


def chunk_stats(job: ChunkJob, block: xr.Dataset) -> PartialStats:
    """Run the model on one (time, lat, lon) block and reduce it to mergeable sums."""
    block = block.transpose(*GRID_DIMS)
    n_time, n_lat, n_lon = (block.sizes[d] for d in GRID_DIMS)
    x = feature_block(block, job.features)
    pred = _run(job, x).reshape(n_time, n_lat * n_lon)
    obs = np.asarray(block[job.target].values, dtype=np.float64).reshape(n_time, n_lat * n_lon)
    base = (
        np.asarray(block[job.baseline].values, dtype=np.float64).reshape(n_time, n_lat * n_lon)
        if job.baseline
        else None
    )
    w_space = np.broadcast_to(
        np.cos(np.deg2rad(np.asarray(block["lat"].values, dtype=np.float64)))[:, None],
        (n_lat, n_lon),
    ).reshape(-1)
    w = np.broadcast_to(w_space[None, :], pred.shape)
    sums: dict[str, float] = {}

    def acc(name: str, value: np.ndarray) -> None:
        sums[name] = float(np.sum(value))

    err = pred - obs
    acc("w", w)
    acc("w_err", w * err)
    acc("w_err2", w * err * err)
    acc("w_abs_err", w * np.abs(err))
    acc("w_obs", w * obs)
    acc("w_pred", w * pred)
    # Centered (spatial-anomaly) statistics per time step, pooled over time steps.
    ws = w_space / w_space.sum()

    def anomaly(field_: np.ndarray) -> np.ndarray:
        return np.asarray(field_ - (field_ @ ws)[:, None])

    oa, pa = anomaly(obs), anomaly(pred)
    acc("w_pa_oa", w * pa * oa)
    acc("w_pa2", w * pa * pa)
    acc("w_oa2", w * oa * oa)
    if base is not None:
        berr = base - obs
        ba = anomaly(base)
        acc("w_berr", w * berr)
        acc("w_berr2", w * berr * berr)
        acc("w_abs_berr", w * np.abs(berr))
        acc("w_ba_oa", w * ba * oa)
        acc("w_ba2", w * ba * ba)
    flat_w = w.reshape(-1)
    hist: dict[str, np.ndarray] = {}
    outside = 0
    for name, values in (("obs", obs), ("pred", pred)):
        counts, weighted, out = _histograms(values.reshape(-1), flat_w)
        hist[f"{name}_n"], hist[f"{name}_w"] = counts, weighted
        outside += out
    index_obs = {i.name: _index_value(i, obs, w) for i in job.indices}
    index_pred = {i.name: _index_value(i, pred, w) for i in job.indices}
    index_base = {i.name: _index_value(i, base, w) for i in job.indices} if base is not None else {}
    return PartialStats(
        n=int(obs.size),
        n_times=n_time,
        sums=sums,
        hist=hist,
        index_obs=index_obs,
        index_pred=index_pred,
        index_base=index_base,
        outside_range=outside,
    )


def merge_all(parts: Sequence[PartialStats]) -> PartialStats:
    """Merge partials left to right (the order fixes the floating-point result)."""
    result = parts[0]
    for part in parts[1:]:
        result = result.merge(part)
    return result


@dataclass(frozen=True)
class ValidationStats:
    """Merged statistics of the model, the observations and the baseline on the validation set."""

    stats: PartialStats
    sample_hours: float
    n_chunks: int
    indices: tuple[ImpactIndex, ...]

    def wmean(self, key: str) -> float:
        return self.stats.sums[key] / self.stats.sums["w"]

    @property
    def has_baseline(self) -> bool:
        return "w_berr2" in self.stats.sums

    def quantile(self, which: str, q: float) -> float:
        """Area-weighted quantile of ``obs`` or ``pred`` from the histogram (linear within a bin)."""
        hist = self.stats.hist[f"{which}_w"]
        cum = np.cumsum(hist)
        total = cum[-1]
        target = q * total
        i = int(np.searchsorted(cum, target, side="left"))
        i = min(i, HIST_BINS - 1)
        before = cum[i - 1] if i > 0 else 0.0
        inside = hist[i]
        frac = 0.0 if inside <= 0 else (target - before) / inside
        return float(HIST_LOW_K + (i + frac) * HIST_WIDTH)

    def count_beyond(self, which: str, threshold: float, *, above: bool) -> float:
        """Number of samples above (or below) ``threshold``, interpolated within its bin."""
        counts = self.stats.hist[f"{which}_n"].astype(np.float64)
        pos = (threshold - HIST_LOW_K) / HIST_WIDTH
        i = int(np.clip(np.floor(pos), 0, HIST_BINS - 1))
        frac = float(np.clip(pos - i, 0.0, 1.0))
        if above:
            return float(counts[i + 1 :].sum() + counts[i] * (1.0 - frac))
        return float(counts[:i].sum() + counts[i] * frac)

    def degree_days(self, sums: float) -> float:
        """Area-weighted mean degree-days per grid point from a weighted sum of exceedances."""
        w_per_time = self.stats.sums["w"] / max(self.stats.n_times, 1)
        return sums / w_per_time * self.sample_hours / 24.0


def open_validation(path: Path, chunk_times: int | None = None) -> xr.Dataset:
    """Open a validation file lazily, chunked along time only."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as probe:
            cells = int(probe.sizes.get("lat", 1) * probe.sizes.get("lon", 1))
    except Exception as error:  # netCDF4/HDF5 raise many unrelated types
        raise InferenceError(f"cannot open the validation data: {error}", file=str(path)) from error
    steps = chunk_times or max(1, TARGET_CHUNK_SAMPLES // max(cells, 1))
    return xr.open_dataset(path, engine="netcdf4", chunks={"time": steps, "lat": -1, "lon": -1})


def sample_hours(times: np.ndarray) -> float:
    """Interval between samples in hours (median step; 24 h when there is a single step)."""
    t = np.asarray(times).astype("datetime64[s]").astype(np.int64)
    if t.size < 2:
        return 24.0
    return float(np.median(np.diff(t))) / 3600.0


def compute_validation_stats(
    job: ChunkJob,
    path: Path,
    *,
    chunk_times: int | None = None,
    client: Any = None,
    progress: Progress | None = None,
) -> ValidationStats:
    """Reduce the whole validation file chunk by chunk, locally (threads) or on ``client``."""
    ds = open_validation(path, chunk_times)
    try:
        names = [job.target] + ([job.baseline] if job.baseline else [])
        names += [
            f.source.split(":", 1)[1] for f in job.features if f.source.startswith("variable:")
        ]
        missing = [n for n in dict.fromkeys(names) if n not in ds.data_vars]
        if missing:
            raise InferenceError(
                "validation data lacks a variable",
                file=str(path),
                field=missing[0],
                expected=list(dict.fromkeys(names)),
                found=sorted(map(str, ds.data_vars)),
            )
        ds = ds[list(dict.fromkeys(names))]
        starts = np.cumsum((0,) + tuple(ds.chunks["time"]))
        blocks = [
            ds.isel(time=slice(int(a), int(b)))
            for a, b in zip(starts[:-1], starts[1:], strict=True)
        ]
        if not blocks:
            raise InferenceError(
                "validation data is empty",
                file=str(path),
                field="time",
                expected=">= 1 step",
                found=0,
            )
        parts = [dask.delayed(chunk_stats, pure=True)(job, block) for block in blocks]
        total = len(parts)
        if client is not None:
            from distributed import as_completed

            futures = client.compute(parts)
            for done, _ in enumerate(as_completed(futures), start=1):
                if progress:
                    progress(done, total)
            merged: PartialStats | None = None
            for i in range(0, total, MERGE_GROUP):
                group = futures[i : i + MERGE_GROUP]
                merged = _fold(merged, merge_all(client.gather(group)))
                for future in group:  # results leave the cluster's memory once folded
                    future.release()
        else:
            merged = _compute_local(parts, progress)
        assert merged is not None  # blocks is not empty
        return ValidationStats(
            stats=merged,
            sample_hours=sample_hours(ds["time"].values),
            n_chunks=total,
            indices=job.indices,
        )
    finally:
        ds.close()


def _fold(merged: PartialStats | None, group: PartialStats) -> PartialStats:
    return group if merged is None else merged.merge(group)


def _compute_local(parts: list[Any], progress: Progress | None) -> PartialStats:
    """Compute partials on two local threads, a group at a time, folding each group in at once.

    Memory stays flat in the number of chunks (one running total, one group), and the grouping
    and left-to-right folding are the cluster path's, so both give bit-identical sums.
    """
    merged: PartialStats | None = None
    for start in range(0, len(parts), MERGE_GROUP):
        group = parts[start : start + MERGE_GROUP]
        computed = dask.compute(*group, scheduler="threads", num_workers=min(2, len(group)))
        merged = _fold(merged, merge_all(list(computed)))
        if progress:
            progress(min(start + MERGE_GROUP, len(parts)), len(parts))
    assert merged is not None
    return merged
