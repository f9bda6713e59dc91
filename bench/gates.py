"""Gate evaluation over a large synthetic validation set: chunked engine vs bare numpy.

Usage::

    .venv/bin/python bench/gates.py [--samples 10000000] [--chunk-times 800]

Builds the reference candidate in a temporary directory, then writes a synthetic validation file
of ``--samples`` samples (and one of twice as many) on the reference's 25 x 53 grid: the real
validation fields tiled over time with a random per-step offset and noise. In the same run, each
measurement in its own subprocess (so peak RSS is its own):

- ``gates``: ``run_gates`` with the default policy (all nine gates; the four data gates read the
  file chunk by chunk through xarray + dask on two local threads);
- ``numpy``: a bare numpy pass computing the same statistics (weighted RMSE/MAE/bias and baseline,
  centered pattern correlation, weighted 1st/99th percentiles by sorting, impact counts and
  degree-days, drift on the same subsample) with everything in memory, the model run once on
  the whole matrix.

Prints seconds, the ratio gates / numpy and peak RSS for both sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GRID_CELLS = 25 * 53


def write_synthetic(template: Path, out: Path, samples: int, seed: int = 0) -> int:
    """Tile the template's fields to ``samples`` samples, written block by block; returns steps."""
    import netCDF4
    import xarray as xr

    with xr.open_dataset(template) as ds:
        air = ds["air"].values.astype(np.float32)
        coarse = ds["t_coarse"].values.astype(np.float32)
        lat, lon = ds["lat"].values, ds["lon"].values
    steps = samples // GRID_CELLS
    rng = np.random.default_rng(seed)
    with netCDF4.Dataset(out, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "hours since 2014-01-01 00:00:00", "standard"
        nc.createVariable("lat", "f8", ("lat",))[:] = lat
        nc.createVariable("lon", "f8", ("lon",))[:] = lon
        v_air = nc.createVariable(
            "air", "f4", ("time", "lat", "lon"), chunksizes=(64, lat.size, lon.size)
        )
        v_coarse = nc.createVariable(
            "t_coarse", "f4", ("time", "lat", "lon"), chunksizes=(64, lat.size, lon.size)
        )
        block = 1024
        for start in range(0, steps, block):
            n = min(block, steps - start)
            pick = np.arange(start, start + n) % air.shape[0]
            offset = rng.normal(0.0, 2.0, size=(n, 1, 1)).astype(np.float32)
            noise = rng.normal(0.0, 0.3, size=(n, lat.size, lon.size)).astype(np.float32)
            v_coarse[start : start + n] = coarse[pick] + offset
            v_air[start : start + n] = air[pick] + offset + noise
            t[start : start + n] = 6.0 * np.arange(start, start + n)
    return steps


def run_gates_worker(candidate: Path, chunk_times: int) -> dict[str, float]:
    from core.candidate.load import load_candidate
    from core.gates import run_gates
    from core.policy import load_policy

    c = load_candidate(candidate)
    start = time.perf_counter()
    report = run_gates(c, load_policy(), chunk_times=chunk_times)
    seconds = time.perf_counter() - start
    acc = report.result("accuracy")
    return {
        "seconds": seconds,
        "rmse": float(acc.measured["rmse"]),
        "q99_abs_bias": float(report.result("extremes").measured["q99_abs_bias"]),
        "passed": float(report.passed),
    }


def run_numpy_worker(candidate: Path) -> dict[str, float]:
    import xarray as xr

    from core.candidate.features import feature_block
    from core.candidate.inference import make_session, run_matrix
    from core.candidate.load import load_candidate
    from core.gates.drift_stats import drift_report
    from core.gates.stats import sampled_features

    c = load_candidate(candidate)
    start = time.perf_counter()
    features = c.metadata.inputs[0].features
    with xr.open_dataset(c.validation_path) as ds:
        ds = ds.load()
    x = feature_block(ds, features)
    pred = run_matrix(make_session(c.onnx_path), c.metadata, x)
    obs = ds["air"].values.reshape(-1).astype(np.float64)
    base = ds["t_coarse"].values.reshape(-1).astype(np.float64)
    n_time, n_lat, n_lon = ds["air"].shape
    w = np.broadcast_to(
        np.cos(np.deg2rad(ds["lat"].values))[None, :, None], ds["air"].shape
    ).reshape(-1)
    W = w.sum()
    err, berr = pred - obs, base - obs
    out = {
        "rmse": float(np.sqrt((w * err**2).sum() / W)),
        "mae": float((w * np.abs(err)).sum() / W),
        "bias": float((w * err).sum() / W),
        "baseline_rmse": float(np.sqrt((w * berr**2).sum() / W)),
    }
    ws = np.cos(np.deg2rad(ds["lat"].values))[:, None] * np.ones(n_lon)
    ws = (ws / ws.sum()).reshape(-1)
    p2, o2 = pred.reshape(n_time, -1), obs.reshape(n_time, -1)
    pa, oa = p2 - (p2 @ ws)[:, None], o2 - (o2 @ ws)[:, None]
    wf = w.reshape(n_time, -1)
    out["pattern_correlation"] = float(
        (wf * pa * oa).sum() / np.sqrt((wf * pa**2).sum() * (wf * oa**2).sum())
    )
    for name, values in (("obs", obs), ("pred", pred)):
        order = np.argsort(values)
        cw = np.cumsum(w[order]) / W
        out[f"{name}_q01"] = float(values[order][np.searchsorted(cw, 0.01)])
        out[f"{name}_q99"] = float(values[order][np.searchsorted(cw, 0.99)])
    out["q99_abs_bias"] = abs(out["pred_q99"] - out["obs_q99"])
    for t in (273.15, 253.15):
        out[f"below_{t}"] = float(np.count_nonzero(pred < t) - np.count_nonzero(obs < t))
    out["above_298.15"] = float(np.count_nonzero(pred > 298.15) - np.count_nonzero(obs > 298.15))
    for base_k in (291.15,):
        out["hdd"] = float(
            (w * np.maximum(base_k - pred, 0)).sum() - (w * np.maximum(base_k - obs, 0)).sum()
        )
    out["pdd"] = float(
        (w * np.maximum(pred - 273.15, 0)).sum() - (w * np.maximum(obs - 273.15, 0)).sum()
    )

    # the drift subsample the gate uses, for the same work
    ref_m, _ = sampled_features(c.reference_path, features, 200_000)
    bat_m, _ = sampled_features(c.validation_path, features, 200_000)
    drift_report(ref_m, bat_m, [f.name for f in features])
    out["seconds"] = time.perf_counter() - start
    return out


def child(mode: str, candidate: Path, chunk_times: int) -> dict[str, float]:
    """Run one measurement in a fresh interpreter; returns its figures and peak RSS."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            mode,
            "--candidate",
            str(candidate),
            "--chunk-times",
            str(chunk_times),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{mode} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument(
        "--chunk-times", type=int, default=800, help="time steps per chunk (~1.06M samples)"
    )
    parser.add_argument("--worker", choices=["gates", "numpy"])
    parser.add_argument("--candidate", type=Path)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "gates":
            figures = run_gates_worker(args.candidate, args.chunk_times)
        else:
            figures = run_numpy_worker(args.candidate)
        figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return

    from core.demo.reference import build_reference_candidate

    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="kfm-bench-gates-") as tmp:
        root = build_reference_candidate(Path(tmp) / "candidate")
        template = Path(tmp) / "template.nc"
        shutil.copy(root / "data" / "validation.nc", template)
        rows = []
        for samples in (args.samples, 2 * args.samples):
            steps = write_synthetic(template, root / "data" / "validation.nc", samples)
            n = steps * GRID_CELLS
            size_mib = (root / "data" / "validation.nc").stat().st_size / 2**20
            g = child("gates", root, args.chunk_times)
            p = child("numpy", root, args.chunk_times)
            assert abs(g["rmse"] - p["rmse"]) < 1e-6, (g["rmse"], p["rmse"])
            rows.append((n, size_mib, g, p))
            print(
                f"{n:>11,} samples ({size_mib:,.0f} MiB file): gates {g['seconds']:.2f} s, "
                f"peak {g['peak_rss_mib']:,.0f} MiB | numpy {p['seconds']:.2f} s, peak {p['peak_rss_mib']:,.0f} "
                f"MiB | ratio gates/numpy {g['seconds'] / p['seconds']:.2f}x | rmse {g['rmse']:.6f} = "
                f"{p['rmse']:.6f}, q99 bias {g['q99_abs_bias']:.4f} vs {p['q99_abs_bias']:.4f}"
            )
        (n1, _, g1, p1), (n2, _, g2, p2) = rows
        print(
            f"doubling {n1:,} -> {n2:,}: gates peak x{g2['peak_rss_mib'] / g1['peak_rss_mib']:.2f}, "
            f"numpy peak x{p2['peak_rss_mib'] / p1['peak_rss_mib']:.2f}"
        )


if __name__ == "__main__":
    main()
