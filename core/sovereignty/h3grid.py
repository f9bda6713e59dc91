"""H3 helpers for the sovereignty screen, on unsigned 64-bit integer cells.

h3-py 4 has no vectorized point-to-cell, so :func:`latlng_to_cells` indexes whole arrays with
h3ronpy (the same H3 C library, vectorized in Rust; ~3x the h3-py loop here, see
docs/benchmarks.md). Callers index each grid point once per resolution, never per time step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from h3.api import numpy_int as h3n
from h3ronpy.vector import coordinates_to_cells

from core.errors import SovereigntyError

Cells = npt.NDArray[np.uint64]


def latlng_to_cells(lat: npt.ArrayLike, lon: npt.ArrayLike, res: int) -> Cells:
    """The resolution-``res`` cell of each (lat, lon) point, in degrees (vectorized)."""
    lat_array = np.ascontiguousarray(lat, dtype=np.float64).reshape(-1)
    lon_array = np.ascontiguousarray(lon, dtype=np.float64).reshape(-1)
    if lat_array.size != lon_array.size:
        raise SovereigntyError(
            "lat and lon differ in length",
            field="lon",
            expected=lat_array.size,
            found=lon_array.size,
        )
    if lat_array.size == 0:
        return np.zeros(0, dtype=np.uint64)
    try:
        cells = coordinates_to_cells(lat_array, lon_array, res)
        return np.asarray(cells, dtype=np.uint64)
    except Exception as error:  # h3ronpy's ValueError on NaN or out-of-range degrees
        raise SovereigntyError(
            f"cannot index points on H3: {error}",
            field="lat/lon",
            expected="finite degrees, lat in -90..90",
        ) from error


def cells_overlapping(geometry: Mapping[str, Any], res: int) -> Cells:
    """Every resolution-``res`` cell that overlaps a GeoJSON (Multi)Polygon, sorted."""
    shape = h3n.geo_to_h3shape(geometry)
    cells = h3n.h3shape_to_cells_experimental(shape, res, contain="overlap")
    return np.unique(np.asarray(cells, dtype=np.uint64))


def grid_disks(cells: Iterable[int], rings: int) -> Cells:
    """The cells and every cell within ``rings`` steps of them, sorted and unique."""
    parts = [np.asarray(h3n.grid_disk(int(cell), rings), dtype=np.uint64) for cell in cells]
    if not parts:
        return np.empty(0, dtype=np.uint64)
    return np.unique(np.concatenate(parts))


def cell_ring_lnglat(cell: int, digits: int = 6) -> list[list[float]]:
    """A cell's boundary as a closed GeoJSON ring of [lon, lat], rounded to ``digits``."""
    ring = [[round(lng, digits), round(lat, digits)] for lat, lng in h3n.cell_to_boundary(cell)]
    ring.append(ring[0])
    return ring


def cell_to_str(cell: int) -> str:
    """The usual hexadecimal string form of a cell (what maps and h3-js expect)."""
    return str(h3n.int_to_str(int(cell)))
