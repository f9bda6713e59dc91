"""Screen a candidate: run its model over its validation period and apply the sovereignty screen.

The one pipeline behind ``kfm screen``, ``kfm deploy`` and ``kfm ci``, so the three publish the
same bytes. :func:`screen_candidate` runs the model twice:

* on the candidate's native validation grid, for every point outside the steward regions;
* on a target grid of ``resolution_deg`` inside each concerned region's bounding box, cut to the
  model's footprint (a downscaling model takes coordinates as inputs, so it runs finer than the
  tier's H3 cells and the screen really aggregates), keeping only the points inside a region.

The footprint is the validation grid's extent (:attr:`core.candidate.load.Candidate.footprint`),
never the candidate's declared box, and nothing is published outside it: the model is not run
where it has no data (its inputs there would be clamped or extrapolated), and so it publishes
nothing over lands whose stewards were not asked (:func:`region_grids`). The concerned regions
and stewards are those whose land or withheld buffer the footprint overlaps
(:func:`core.sovereignty.care.touched_regions`).

The release (``[time, point]`` values) goes through :func:`core.sovereignty.generalize.screen_field`. The
default step, 0.05° (~5 km, like real downscaled outputs), puts ~10 points in a res-5 cell (253
km²), so with the reference's 4 validation time steps a public-generalized cell holds ~40
samples, above the default ``min_count`` of 11; at 0.25° every res-5 cell holds 1–2 points
(4–8 samples) and is suppressed, so nothing would be published inside the regions.

:class:`CandidateScreen` holds the :class:`~core.sovereignty.generalize.ScreenResult`, the CARE block
(:func:`core.sovereignty.care.care_metadata`), the conflicts and the concerned stewards;
:meth:`CandidateScreen.write` writes ``published.geojson``, ``report.json``, ``care.json`` and,
when there are conflicts, ``sovereignty_conflict.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from core.errors import SovereigntyError

if TYPE_CHECKING:  # the CLI imports this module for its defaults: keep the import light
    import xarray as xr

    from core.candidate.load import Candidate
    from core.policy import ScreeningPolicy
    from core.sovereignty.care import Conflict
    from core.sovereignty.generalize import ScreenResult
    from core.sovereignty.regions import Region, RegionSet

DEFAULT_RESOLUTION_DEG = 0.05
"""Target grid step inside regions (degrees): ~5 km, the scale of real downscaled outputs."""
MAX_RESOLUTION_DEG = 5.0
CARE_FILE = "care.json"
COORD_DECIMALS = 6


@dataclass(frozen=True, eq=False)
class CandidateScreen:
    """What screening a candidate gave: the screen, CARE block, conflicts, stewards concerned."""

    result: ScreenResult
    care: dict[str, Any]
    conflicts: tuple[Conflict, ...]
    concerned_stewards: tuple[str, ...]
    model_family: str
    resolution_deg: float
    footprint: tuple[float, float, float, float]

    def write(self, out_dir: Path | str) -> list[Path]:
        """Write the screen's files into ``out_dir`` (deterministic bytes); returns their paths."""
        from core.jsonio import write_json
        from core.sovereignty.care import write_conflict_report
        from core.sovereignty.generalize import write_screen_outputs

        out = Path(out_dir)
        paths = list(write_screen_outputs(self.result, out))
        conflict = write_conflict_report(self.conflicts, out, model_family=self.model_family)
        if conflict is not None:
            paths.append(conflict)
        write_json(out / CARE_FILE, self.care)
        paths.append(out / CARE_FILE)
        return paths


def fine_grid(
    bounds: tuple[float, float, float, float], step: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """1-D lat/lon axes on multiples of ``step`` degrees, covering a (w, s, e, n) box."""
    west, south, east, north = bounds
    lat = np.arange(np.floor(south / step), np.ceil(north / step) + 1) * step
    lon = np.arange(np.floor(west / step), np.ceil(east / step) + 1) * step
    return np.round(lat, COORD_DECIMALS), np.round(lon, COORD_DECIMALS)


def region_grids(
    regions: Iterable[Region],
    footprint: tuple[float, float, float, float],
    step: float,
) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    """Fine lat/lon axes for each region whose box meets the footprint, inside the footprint.

    Each grid covers the region's bounding box cut to the footprint (on multiples of ``step``),
    and no coordinate lies outside the footprint: the model never runs beyond its data.
    """
    west, south, east, north = footprint
    grids = []
    for region in regions:
        r_west, r_south, r_east, r_north = region.geometry.bounds
        box = (max(west, r_west), max(south, r_south), min(east, r_east), min(north, r_north))
        if box[0] > box[2] or box[1] > box[3]:
            continue
        lat, lon = fine_grid(box, step)
        lat = lat[(lat >= south) & (lat <= north)]
        lon = lon[(lon >= west) & (lon <= east)]
        if lat.size and lon.size:
            grids.append((lat, lon))
    return grids


def release_points(
    fine: list[xr.DataArray], native: xr.DataArray, regions: RegionSet
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Fine-grid points inside regions plus native-grid points outside them: (lat, lon, values).

    ``values`` is ``[time, point]``. A point on the fine grids of two overlapping region boxes
    is kept once (the first grid's value: every grid is the same model on the same step).
    """
    import shapely

    union = shapely.union_all([r.geometry for r in regions])
    lats, lons, blocks = [], [], []
    for field in [*fine, native]:
        la, lo = np.meshgrid(field["lat"].values, field["lon"].values, indexing="ij")
        la, lo = la.ravel(), lo.ravel()
        inside = shapely.intersects_xy(union, lo, la)
        keep = ~inside if field is native else inside
        block = field.transpose("time", "lat", "lon").values.reshape(field.sizes["time"], -1)
        lats.append(la[keep])
        lons.append(lo[keep])
        blocks.append(block[:, keep])
    lat, lon = np.concatenate(lats), np.concatenate(lons)
    values = np.concatenate(blocks, axis=1).astype(np.float64)
    _, first = np.unique(np.stack([lat, lon]), axis=1, return_index=True)
    first.sort()
    return lat[first], lon[first], values[:, first]


def screen_candidate(
    candidate: Candidate,
    regions: RegionSet,
    policy: ScreeningPolicy,
    *,
    resolution_deg: float = DEFAULT_RESOLUTION_DEG,
) -> CandidateScreen:
    """Run the candidate's model over its validation period and screen the release."""
    import xarray as xr

    from core.candidate.inference import predict_grid
    from core.sovereignty.care import care_metadata, find_conflicts, touched_regions
    from core.sovereignty.generalize import screen_field

    if not 0 < resolution_deg <= MAX_RESOLUTION_DEG:
        raise SovereigntyError(
            "target grid step out of range",
            field="resolution_deg",
            expected=f"0 < step <= {MAX_RESOLUTION_DEG:g} degrees",
            found=resolution_deg,
        )
    family = candidate.metadata.model_family
    with xr.open_dataset(candidate.validation_path, engine="netcdf4") as ds:
        native_lat, native_lon = ds["lat"].values, ds["lon"].values
    native = predict_grid(candidate, native_lat, native_lon)
    footprint = candidate.footprint
    concerned = touched_regions(footprint, regions, policy)
    grids = region_grids(concerned, footprint, resolution_deg)
    fine = [predict_grid(candidate, lat, lon) for lat, lon in grids]
    lat, lon, values = release_points(fine, native, regions)
    result = screen_field(
        lat,
        lon,
        values,
        regions,
        policy,
        model_family=family,
        variable=str(native.name or "value"),
        units=str(native.attrs.get("units", "")),
    )
    conflicts = find_conflicts(footprint, regions, family, screening=policy)
    care = care_metadata(
        regions,
        policy,
        model_family=family,
        footprint=footprint,
        result=result,
        conflicts=conflicts,
        target_grid_deg=resolution_deg,
    )
    stewards = sorted({r.properties.steward_id for r in concerned})
    return CandidateScreen(
        result=result,
        care=care,
        conflicts=tuple(conflicts),
        concerned_stewards=tuple(stewards),
        model_family=family,
        resolution_deg=resolution_deg,
        footprint=footprint,
    )
