"""Sovereignty screen: what a model may publish inside steward regions, and the proof of it.

What is screened is a model's output field over a release: values ``[time, point]`` at grid
points, so a cell's ``count`` is its contributing (grid point, time step) samples.

Rules (thresholds from the policy's ``[screening]`` table, :class:`core.policy.ScreeningPolicy`):

* outside every region, each grid point passes at the native grid (mean/min/max over time);
* inside a region, samples are aggregated to the tier's H3 resolution, one resolution per region
  per release; a cell with fewer than ``min_count`` samples is suppressed;
* a ``withheld`` region, a region labelled ``tk_secret_sacred``, or (when a model family is given)
  a region whose steward has not granted consent for it publishes nothing; neither does any grid
  point within ``withheld_buffer_rings`` H3 rings of it, the rings counted at the coarsest tier
  resolution so no published cell of any tier touches the withheld land;
* every sample feeds at most one published record, so records never overlap in samples and no
  suppressed or withheld value can be recovered by differencing records (of one or two tiers);
* derived fields (``anomaly``) are computed from the published records only.

Each grid point is indexed on H3 once per resolution it needs, directly (h3-py 4 has no
vectorized indexing; a release indexes grid points, not (point, time) samples). Cells are never
rolled up from finer ones: H3 children overhang their parent, so the rolled-up parent of a
point's fine cell is sometimes not the cell that contains the point.

Where regions overlap, a point belongs to the most restrictive one (withheld, then the coarsest
resolution, then ``region_id``). :func:`screen_field` computes; :func:`write_screen_outputs`
writes ``published.geojson`` and ``report.json`` byte-for-byte deterministically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
import xarray as xr
from shapely.geometry import mapping

from core.errors import SovereigntyError
from core.policy import ScreeningPolicy
from core.sovereignty.h3grid import (
    cell_ring_lnglat,
    cell_to_str,
    cells_overlapping,
    grid_disks,
    latlng_to_cells,
)
from core.sovereignty.regions import Region, RegionSet

MASKING = "h3-climate-generalized"
"""The CARE ``masking`` value of a release screened here."""

# What happened to each grid point of the release (ScreenResult.point_status).
NATIVE, PUBLISHED, SUPPRESSED, WITHHELD, BUFFER, EMPTY = range(6)
__all__ = [
    "PublishedCell",
    "RegionScreen",
    "ScreenResult",
    "screen_field",
    "screen_grid",
    "write_screen_outputs",
]
STATUS_NAMES = ("native", "published", "suppressed", "withheld", "buffer", "empty")

VALUE_DECIMALS = 4
COORD_DECIMALS = 6

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PublishedCell:
    """One published H3 cell inside a region: aggregates of its (point, time) samples."""

    region_id: str
    tier: str
    h3: int
    resolution: int
    count: int
    mean: float
    min: float
    max: float


@dataclass(frozen=True)
class RegionScreen:
    """What the screen did inside one region (one entry of ``report.json``)."""

    region_id: str
    nation: str
    steward_id: str
    tier: str
    withheld_reason: str | None
    resolution: int | None
    cells_published: int
    cells_suppressed: int
    samples_published: int
    samples_suppressed: int
    samples_withheld: int
    labels: tuple[str, ...]
    notices: tuple[str, ...]
    consent: dict[str, str]
    example: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "region_id": self.region_id,
            "nation": self.nation,
            "steward_id": self.steward_id,
            "tier": self.tier,
            "published": self.withheld_reason is None,
            "withheld_reason": self.withheld_reason,
            "resolution": self.resolution,
            "cells_published": self.cells_published,
            "cells_suppressed": self.cells_suppressed,
            "samples_published": self.samples_published,
            "samples_suppressed": self.samples_suppressed,
            "samples_withheld": self.samples_withheld,
            "labels": list(self.labels),
            "notices": list(self.notices),
            "consent": dict(sorted(self.consent.items())),
            "example": self.example,
        }


@dataclass(frozen=True, eq=False)
class ScreenResult:
    """The outcome of a screen: published records, per-region report, per-point fate."""

    cells: tuple[PublishedCell, ...]
    native_lat: FloatArray
    native_lon: FloatArray
    native_count: npt.NDArray[np.int64]
    native_mean: FloatArray
    native_min: FloatArray
    native_max: FloatArray
    regions: tuple[RegionScreen, ...]
    point_status: npt.NDArray[np.int8]
    point_region: npt.NDArray[np.int32]  # index into `regions`, -1 outside every region
    point_cell: npt.NDArray[np.uint64]  # published or suppressed cell of the point, else 0
    point_count: npt.NDArray[np.int64]  # finite samples of each point
    buffer_resolution: int | None
    buffer_cells: npt.NDArray[np.uint64]
    policy: ScreeningPolicy
    model_family: str | None = None
    variable: str = "value"
    units: str = ""
    time_steps: int = 0

    def published_baseline(self) -> float | None:
        """Count-weighted mean of every published record: the reference of ``anomaly``."""
        counts = [c.count for c in self.cells] + self.native_count.tolist()
        sums = [c.mean * c.count for c in self.cells] + (
            self.native_mean * self.native_count
        ).tolist()
        total = sum(counts)
        return float(np.sum(sums) / total) if total else None


def screen_field(
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    values: npt.ArrayLike,
    regions: RegionSet,
    policy: ScreeningPolicy,
    *,
    model_family: str | None = None,
    variable: str = "value",
    units: str = "",
) -> ScreenResult:
    """Screen a release: ``values[time, point]`` at points ``lat[point]``, ``lon[point]`` (deg)."""
    lat_a, lon_a, vals = _checked_inputs(lat, lon, values)
    finite = np.isfinite(vals)
    point_count = finite.sum(axis=0).astype(np.int64)
    point_sum = np.where(finite, vals, 0.0).sum(axis=0)
    point_min = np.where(finite, vals, np.inf).min(axis=0, initial=np.inf)
    point_max = np.where(finite, vals, -np.inf).max(axis=0, initial=-np.inf)
    n = lat_a.size

    reasons = [r.withheld_reason(model_family) for r in regions]
    resolutions = [
        None if why else policy.resolution_for(r.tier)
        for r, why in zip(regions, reasons, strict=True)
    ]
    point_region = _assign_regions(lat_a, lon_a, regions, reasons, resolutions)
    status = np.full(n, NATIVE, dtype=np.int8)
    status[point_region >= 0] = PUBLISHED
    status[point_count == 0] = EMPTY
    for index, reason in enumerate(reasons):
        if reason is not None:
            status[point_region == index] = WITHHELD

    # Points are indexed directly at each resolution they need (never rolled up from a finer
    # cell: H3 children overhang their parent, so a rolled-up cell may not contain the point).
    # Points far from every withheld region are never indexed for the buffer.
    buffer_res, buffer_cells = _buffer_cells(regions, reasons, policy)
    if buffer_res is not None:
        near = np.flatnonzero(
            ((status == NATIVE) | (status == PUBLISHED))
            & _in_bbox(lat_a, lon_a, _cells_bbox(buffer_cells))
        )
        hit = np.isin(latlng_to_cells(lat_a[near], lon_a[near], buffer_res), buffer_cells)
        status[near[hit]] = BUFFER

    cells: list[PublishedCell] = []
    point_cell = np.zeros(n, dtype=np.uint64)
    reports: list[RegionScreen] = []
    for index, region in enumerate(regions):
        in_region = point_region == index
        res = resolutions[index]
        published = suppressed = 0
        samples_published = samples_suppressed = 0
        if res is not None:
            members = np.flatnonzero(in_region & (status == PUBLISHED))
            point_cell[members] = latlng_to_cells(lat_a[members], lon_a[members], res)
            for cell, agg, rows in _aggregate(
                point_cell[members], members, point_count, point_sum, point_min, point_max
            ):
                if agg[0] < policy.min_count:
                    status[rows] = SUPPRESSED
                    suppressed += 1
                    samples_suppressed += int(agg[0])
                    continue
                published += 1
                samples_published += int(agg[0])
                cells.append(
                    PublishedCell(
                        region.region_id,
                        region.tier,
                        int(cell),
                        res,
                        int(agg[0]),
                        agg[1] / agg[0],
                        agg[2],
                        agg[3],
                    )
                )
        withheld = int(point_count[in_region & ((status == WITHHELD) | (status == BUFFER))].sum())
        reports.append(
            _region_report(
                region,
                reasons[index],
                res,
                published,
                suppressed,
                samples_published,
                samples_suppressed,
                withheld,
            )
        )

    native = np.flatnonzero(status == NATIVE)
    cells.sort(key=lambda c: (c.region_id, c.resolution, c.h3))
    return ScreenResult(
        cells=tuple(cells),
        native_lat=lat_a[native],
        native_lon=lon_a[native],
        native_count=point_count[native],
        native_mean=point_sum[native] / point_count[native],
        native_min=point_min[native],
        native_max=point_max[native],
        regions=tuple(reports),
        point_status=status,
        point_region=point_region,
        point_cell=point_cell,
        point_count=point_count,
        buffer_resolution=buffer_res,
        buffer_cells=buffer_cells,
        policy=policy,
        model_family=model_family,
        variable=variable,
        units=units,
        time_steps=int(vals.shape[0]),
    )


def screen_grid(
    field_: xr.DataArray,
    regions: RegionSet,
    policy: ScreeningPolicy,
    *,
    model_family: str | None = None,
) -> ScreenResult:
    """Screen a gridded release ``field_(time, lat, lon)`` (every grid point is a point)."""
    if set(field_.dims) != {"time", "lat", "lon"}:
        raise SovereigntyError(
            "model output has unexpected dimensions",
            field="dims",
            expected="(time, lat, lon)",
            found=tuple(field_.dims),
        )
    grid = field_.transpose("time", "lat", "lon")
    lat2d, lon2d = np.meshgrid(grid["lat"].values, grid["lon"].values, indexing="ij")
    values = np.asarray(grid.values, dtype=np.float64).reshape(grid.sizes["time"], -1)
    return screen_field(
        lat2d.ravel(),
        lon2d.ravel(),
        values,
        regions,
        policy,
        model_family=model_family,
        variable=str(field_.name or "value"),
        units=str(field_.attrs.get("units", "")),
    )


def write_screen_outputs(result: ScreenResult, out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``published.geojson`` and ``report.json`` into ``out_dir`` (deterministic bytes).

    ``published.geojson`` holds one Polygon feature per published H3 cell (properties ``kind:
    "h3"``, ``h3``, ``resolution``, ``count``, ``mean``, ``min``, ``max``, ``anomaly``,
    ``region_id``, ``tier``) then one Point feature per native grid point outside every region
    (``kind: "native"``, same value fields, ``h3``/``resolution``/``region_id`` null), one feature
    per line, keys sorted, values rounded to 4 decimals and coordinates to 6.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    published = out / "published.geojson"
    report = out / "report.json"
    published.write_text(published_geojson_text(result), encoding="utf-8")
    report.write_text(
        json.dumps(screen_report(result), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return published, report


def published_features(result: ScreenResult) -> list[dict[str, Any]]:
    """The published records as GeoJSON features (cells first, then native points)."""
    baseline = result.published_baseline()
    features: list[dict[str, Any]] = []
    for cell in result.cells:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [cell_ring_lnglat(cell.h3)]},
                "properties": {
                    "kind": "h3",
                    "h3": cell_to_str(cell.h3),
                    "resolution": cell.resolution,
                    "region_id": cell.region_id,
                    "tier": cell.tier,
                    **_value_fields(cell.count, cell.mean, cell.min, cell.max, baseline),
                },
            }
        )
    order = np.lexsort((result.native_lon, result.native_lat))
    for i in order.tolist():
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [
                        _round(result.native_lon[i], COORD_DECIMALS),
                        _round(result.native_lat[i], COORD_DECIMALS),
                    ],
                },
                "properties": {
                    "kind": "native",
                    "h3": None,
                    "resolution": None,
                    "region_id": None,
                    "tier": None,
                    **_value_fields(
                        int(result.native_count[i]),
                        float(result.native_mean[i]),
                        float(result.native_min[i]),
                        float(result.native_max[i]),
                        baseline,
                    ),
                },
            }
        )
    return features


def published_geojson_text(result: ScreenResult) -> str:
    """``published.geojson`` as text: a FeatureCollection, one feature per line."""
    head = {"variable": result.variable, "units": result.units, "masking": MASKING}
    lines = [
        json.dumps(f, sort_keys=True, separators=(",", ":")) for f in published_features(result)
    ]
    body = ",\n".join(lines)
    meta = json.dumps(head, sort_keys=True, separators=(",", ":"))
    return '{"type":"FeatureCollection","kfm:screen":' + meta + ',"features":[\n' + body + "\n]}\n"


def screen_report(result: ScreenResult) -> dict[str, Any]:
    """``report.json`` as data: policy used, per-region outcome, what passed outside regions."""
    status = result.point_status
    outside = result.point_region < 0
    counts = result.point_count
    return {
        "model_family": result.model_family,
        "variable": result.variable,
        "units": result.units,
        "time_steps": result.time_steps,
        "masking": MASKING,
        "policy": result.policy.model_dump(),
        "buffer": {
            "resolution": result.buffer_resolution,
            "rings": result.policy.withheld_buffer_rings,
            "cells": int(result.buffer_cells.size),
        },
        "regions": [r.to_dict() for r in sorted(result.regions, key=lambda r: r.region_id)],
        "outside_regions": {
            "points_published": int(np.count_nonzero(status == NATIVE)),
            "samples_published": int(counts[status == NATIVE].sum()),
            "samples_withheld_buffer": int(counts[outside & (status == BUFFER)].sum()),
        },
        "published_baseline": _round(result.published_baseline(), VALUE_DECIMALS),
    }


def _checked_inputs(
    lat: npt.ArrayLike, lon: npt.ArrayLike, values: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    lat_a = np.asarray(lat, dtype=np.float64).ravel()
    lon_a = np.asarray(lon, dtype=np.float64).ravel()
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim == 1:
        vals = vals[np.newaxis, :]
    if lat_a.size != lon_a.size or vals.ndim != 2 or vals.shape[1] != lat_a.size:
        raise SovereigntyError(
            "values do not match the points",
            field="values",
            expected=f"shape (time, {lat_a.size}) with lon of length {lat_a.size}",
            found=f"values {vals.shape}, lon {lon_a.size}",
        )
    if lat_a.size == 0:
        raise SovereigntyError("nothing to screen", field="lat", expected="points", found=0)
    bad_lat = ~np.isfinite(lat_a) | (np.abs(lat_a) > 90)
    bad_lon = ~np.isfinite(lon_a) | (np.abs(lon_a) > 180)
    if bad_lat.any() or bad_lon.any():
        i = int(np.flatnonzero(bad_lat | bad_lon)[0])
        raise SovereigntyError(
            "point coordinates out of range",
            field=f"point[{i}]",
            expected="lat in -90..90, lon in -180..180 (degrees)",
            found=(float(lat_a[i]), float(lon_a[i])),
        )
    return lat_a, lon_a, vals


def _assign_regions(
    lat: FloatArray,
    lon: FloatArray,
    regions: RegionSet,
    reasons: list[str | None],
    resolutions: list[int | None],
) -> npt.NDArray[np.int32]:
    """Index of the most restrictive region holding each point (boundary counts as inside)."""
    point_region = np.full(lat.size, -1, dtype=np.int32)
    order = sorted(
        range(len(regions)),
        key=lambda i: (reasons[i] is None, resolutions[i] or 0, regions.regions[i].region_id),
    )
    for index in order:
        geometry = regions.regions[index].geometry
        candidates = np.flatnonzero(_in_bbox(lat, lon, geometry.bounds) & (point_region < 0))
        if candidates.size:
            inside = shapely.intersects_xy(geometry, lon[candidates], lat[candidates])
            point_region[candidates[inside]] = index
    return point_region


def _buffer_cells(
    regions: RegionSet, reasons: list[str | None], policy: ScreeningPolicy
) -> tuple[int | None, npt.NDArray[np.uint64]]:
    """Cells (at the coarsest tier resolution) overlapping withheld regions, plus the rings."""
    withheld = [r for r, why in zip(regions, reasons, strict=True) if why is not None]
    if not withheld:
        return None, np.empty(0, dtype=np.uint64)
    res = policy.buffer_resolution
    core = np.unique(
        np.concatenate([cells_overlapping(mapping(r.geometry), res) for r in withheld])
    )
    return res, grid_disks(core.tolist(), policy.withheld_buffer_rings)


def _cells_bbox(cells: npt.NDArray[np.uint64]) -> tuple[float, float, float, float]:
    rings = np.array([pt for c in cells.tolist() for pt in cell_ring_lnglat(c)])
    pad = 1.0  # degrees: cell edges are geodesics and bulge past their vertices
    return (
        float(rings[:, 0].min()) - pad,
        float(rings[:, 1].min()) - pad,
        float(rings[:, 0].max()) + pad,
        float(rings[:, 1].max()) + pad,
    )


def _in_bbox(
    lat: FloatArray, lon: FloatArray, bounds: tuple[float, float, float, float]
) -> npt.NDArray[np.bool_]:
    min_lon, min_lat, max_lon, max_lat = bounds
    return (lon >= min_lon) & (lon <= max_lon) & (lat >= min_lat) & (lat <= max_lat)


def _aggregate(
    cells: npt.NDArray[np.uint64],
    rows: npt.NDArray[np.int64],
    count: npt.NDArray[np.int64],
    total: FloatArray,
    low: FloatArray,
    high: FloatArray,
) -> list[tuple[int, tuple[int, float, float, float], npt.NDArray[np.int64]]]:
    """Per cell: (cell, (count, sum, min, max), rows of its points), cells in ascending order."""
    if cells.size == 0:
        return []
    order = np.argsort(cells, kind="stable")
    sorted_cells = cells[order]
    starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
    r = rows[order]
    counts = np.add.reduceat(count[r], starts)
    sums = np.add.reduceat(total[r], starts)
    mins = np.minimum.reduceat(low[r], starts)
    maxs = np.maximum.reduceat(high[r], starts)
    groups = np.split(r, starts[1:])
    return [
        (int(sorted_cells[s]), (int(c), float(t), float(lo), float(hi)), g)
        for s, c, t, lo, hi, g in zip(starts, counts, sums, mins, maxs, groups, strict=True)
    ]


def _region_report(
    region: Region,
    reason: str | None,
    res: int | None,
    published: int,
    suppressed: int,
    samples_published: int,
    samples_suppressed: int,
    samples_withheld: int,
) -> RegionScreen:
    props = region.properties
    return RegionScreen(
        region_id=props.region_id,
        nation=props.nation,
        steward_id=props.steward_id,
        tier=props.tier,
        withheld_reason=reason,
        resolution=res,
        cells_published=published,
        cells_suppressed=suppressed,
        samples_published=samples_published,
        samples_suppressed=samples_suppressed,
        samples_withheld=samples_withheld,
        labels=props.labels,
        notices=props.notices,
        consent=dict(props.consent),
        example=props.example,
    )


def _value_fields(
    count: int, mean: float, low: float, high: float, baseline: float | None
) -> dict[str, Any]:
    return {
        "count": int(count),
        "mean": _round(mean, VALUE_DECIMALS),
        "min": _round(low, VALUE_DECIMALS),
        "max": _round(high, VALUE_DECIMALS),
        "anomaly": None if baseline is None else _round(mean - baseline, VALUE_DECIMALS),
    }


def _round(value: float | None, digits: int) -> float | None:
    if value is None:
        return None
    return round(float(value), digits) + 0.0  # + 0.0 turns -0.0 into 0.0
