"""The model's footprint, computed from the grid it is validated and screened on.

A candidate declares where it was trained (``model_metadata.json`` ``training_domain.bbox``), but
a declaration is whatever is convenient: which stewards must approve a model, and where the
screen may publish its outputs, are decided by the **data** instead. The footprint is the extent
of the validation grid's cells: each ``lat``/``lon`` coordinate of ``data/validation.nc`` is a
cell centre whose cell reaches halfway to its neighbours (half the edge step beyond the
outermost coordinates), clipped to the globe. It is the grid the gates validate on and the
screen runs the model over, so it is what the model publishes.

The declared box must agree with the data (:func:`check_declared_bbox`): it must contain every
grid point (so no data lies outside what was declared) and reach at most
:data:`FOOTPRINT_TOLERANCE_STEPS` grid step beyond the cells' bounds on any side (so a box
drawn far larger than the data, which would hide what the model really covers, is refused).
The one-step tolerance accepts both common ways of writing a grid's box: its points' extent and
its cells' bounds. Anything else is a :class:`core.errors.CandidateError` naming the file, the
field, the declared box and the box computed from the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.errors import CandidateError

BBox = tuple[float, float, float, float]
"""(west, south, east, north) in degrees, WGS 84 longitude/latitude."""

FOOTPRINT_TOLERANCE_STEPS = 1.0
"""How far (in grid steps) a declared box may reach beyond the data's cell bounds."""
COORD_DECIMALS = 6
_EPSILON = 1e-6  # degrees: coordinates are compared after rounding to COORD_DECIMALS


@dataclass(frozen=True)
class GridFootprint:
    """The extent of a lat/lon grid: its cells' bounds, its points' extent and its steps."""

    bbox: BBox
    points: BBox
    lat_step: float
    lon_step: float


def _axis(values: npt.ArrayLike, name: str, low: float, high: float, file: str) -> npt.NDArray:
    axis = np.asarray(values, dtype=np.float64).ravel()
    if axis.size < 2:
        raise CandidateError(
            "a grid axis needs at least two coordinates to have cell bounds",
            file=file,
            field=name,
            expected=">= 2 coordinates",
            found=axis.size,
        )
    if not np.isfinite(axis).all() or axis.min() < low or axis.max() > high:
        raise CandidateError(
            "grid coordinates out of range",
            file=file,
            field=name,
            expected=f"finite degrees in {low:g}..{high:g}"
            + (" (convert a 0..360 grid to -180..180)" if name == "lon" else ""),
            found=f"{axis.min():g}..{axis.max():g}",
        )
    steps = np.diff(axis)
    if not ((steps > 0).all() or (steps < 0).all()):
        raise CandidateError(
            "grid coordinates are not strictly monotonic",
            file=file,
            field=name,
            expected="strictly increasing or decreasing coordinates",
            found=f"{int((steps == 0).sum())} repeated, {axis.size} in all",
        )
    return np.sort(axis)


def grid_footprint(lat: npt.ArrayLike, lon: npt.ArrayLike, *, file: str) -> GridFootprint:
    """The footprint of a grid given its 1-D ``lat`` and ``lon`` cell-centre coordinates."""
    la = _axis(lat, "lat", -90.0, 90.0, file)
    lo = _axis(lon, "lon", -180.0, 180.0, file)
    west = max(-180.0, lo[0] - (lo[1] - lo[0]) / 2)
    east = min(180.0, lo[-1] + (lo[-1] - lo[-2]) / 2)
    south = max(-90.0, la[0] - (la[1] - la[0]) / 2)
    north = min(90.0, la[-1] + (la[-1] - la[-2]) / 2)
    return GridFootprint(
        bbox=_rounded((west, south, east, north)),
        points=_rounded((lo[0], la[0], lo[-1], la[-1])),
        lat_step=round(float(np.diff(la).max()), COORD_DECIMALS),
        lon_step=round(float(np.diff(lo).max()), COORD_DECIMALS),
    )


def check_declared_bbox(
    declared: BBox, footprint: GridFootprint, *, file: str, field: str, data_file: str
) -> None:
    """Refuse a declared box that does not contain the grid or reaches far beyond it."""
    west, south, east, north = (float(v) for v in declared)
    p_west, p_south, p_east, p_north = footprint.points
    c_west, c_south, c_east, c_north = footprint.bbox
    reach_lon = FOOTPRINT_TOLERANCE_STEPS * footprint.lon_step + _EPSILON
    reach_lat = FOOTPRINT_TOLERANCE_STEPS * footprint.lat_step + _EPSILON
    misses = (
        west > p_west + _EPSILON
        or south > p_south + _EPSILON
        or east < p_east - _EPSILON
        or north < p_north - _EPSILON
    )
    beyond = (
        west < c_west - reach_lon
        or south < c_south - reach_lat
        or east > c_east + reach_lon
        or north > c_north + reach_lat
    )
    if not (misses or beyond):
        return
    steps = f"{FOOTPRINT_TOLERANCE_STEPS:g} grid step"
    raise CandidateError(
        "declared bbox does not contain the data's grid"
        if misses
        else f"declared bbox reaches more than {steps} beyond the data's grid",
        file=file,
        field=field,
        expected=(
            f"a box containing every grid point of {data_file} "
            f"{list(footprint.points)} and within {steps} "
            f"({footprint.lon_step:g} deg lon, {footprint.lat_step:g} deg lat) of its cell "
            f"bounds {list(footprint.bbox)} (the footprint computed from the data)"
        ),
        found=[west, south, east, north],
        hint="declare the data's extent, or give validation data covering the declared box",
    )


def _rounded(box: tuple[float, float, float, float]) -> BBox:
    west, south, east, north = (round(float(v), COORD_DECIMALS) + 0.0 for v in box)
    return (west, south, east, north)
