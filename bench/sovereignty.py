"""Benchmark: sovereignty screening of 1,000,000 output samples against a plain h3 loop.

Run: .venv/bin/python bench/sovereignty.py

Two releases, every sample inside one public-generalized region (the worst case: outside
regions nothing is indexed):
  A. release-shaped: 40,000 grid points x 25 time steps = 1,000,000 (point, time) samples;
  B. 1,000,000 distinct locations x 1 time step (no repeated locations to share work).
Baseline, in the same run: per sample ``h3.latlng_to_cell`` at res 9 and ``h3.cell_to_parent``
to the tier resolution, then the same numpy grouping. The screen (``core.sovereignty.generalize``) indexes
each grid point once, directly at the tier resolution, and aggregates time in numpy.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import h3
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.policy import ScreeningPolicy  # noqa: E402
from core.sovereignty.generalize import screen_field  # noqa: E402
from core.sovereignty.regions import regions_from_geojson  # noqa: E402

REGION = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {
                "region_id": "bench",
                "nation": "Bench (fictional)",
                "steward_id": "s-bench",
                "tier": "public-generalized",
            },
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[-110, 35], [-90, 35], [-90, 50], [-110, 50], [-110, 35]]],
            },
        }
    ],
}


def baseline(lat: np.ndarray, lon: np.ndarray, values: np.ndarray, res: int) -> tuple[int, int]:
    """Plain loop: every sample indexed at res 9 and rolled up, then grouped with numpy."""
    n_time = values.shape[0]
    cells = [
        h3.cell_to_parent(h3.latlng_to_cell(la, lo, 9), res)
        for _ in range(n_time)
        for la, lo in zip(lat.tolist(), lon.tolist(), strict=True)
    ]
    keys, inverse = np.unique(np.asarray(cells), return_inverse=True)
    counts = np.bincount(inverse)
    np.bincount(inverse, weights=values.ravel())
    return int(keys.size), int((counts >= ScreeningPolicy().min_count).sum())


def run(label: str, n_points: int, n_time: int) -> None:
    rng = np.random.default_rng(0)
    lat = rng.uniform(35, 50, n_points)
    lon = rng.uniform(-110, -90, n_points)
    values = rng.normal(280.0, 5.0, (n_time, n_points))
    regions = regions_from_geojson(REGION)
    policy = ScreeningPolicy()

    start = time.perf_counter()
    result = screen_field(lat, lon, values, regions, policy)
    screen_s = time.perf_counter() - start
    start = time.perf_counter()
    base_cells, base_published = baseline(lat, lon, values, 5)
    base_s = time.perf_counter() - start

    report = result.regions[0]
    cells = report.cells_published + report.cells_suppressed
    direct = [
        h3.latlng_to_cell(la, lo, 5) for la, lo in zip(lat[:100_000], lon[:100_000], strict=True)
    ]
    rolled = [
        h3.cell_to_parent(h3.latlng_to_cell(la, lo, 9), 5)
        for la, lo in zip(lat[:100_000], lon[:100_000], strict=True)
    ]
    moved = sum(a != b for a, b in zip(direct, rolled, strict=True)) / len(direct)
    print(f"{label}: {n_points:,} points x {n_time} steps = {n_points * n_time:,} samples")
    print(
        f"  screen_field (core.sovereignty.generalize) {screen_s:7.3f} s   cells {cells:,} "
        f"(published {report.cells_published:,})"
    )
    print(
        f"  baseline h3 loop + cell_to_parent {base_s:7.3f} s   cells {base_cells:,} "
        f"(published {base_published:,})"
    )
    print(
        f"  speed-up {base_s / screen_s:5.1f}x;  points whose res-9 parent at res 5 is not the "
        f"res-5 cell holding them: {moved:.2%}"
    )


if __name__ == "__main__":
    run("A release-shaped", 40_000, 25)
    run("B distinct locations", 1_000_000, 1)
