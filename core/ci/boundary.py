"""Sovereignty boundary safety, recomputed from the published records and the regions.

Nothing in the screen's ``report.json`` is trusted. From ``published.geojson``, the steward
regions and the policy's ``[screening]`` table alone, every published record must hold:

* an H3 record's cell is valid, its resolution is the one its ``h3`` id encodes, and it is no
  finer than the tier of its region and of every region holding the cell's centre;
* its ``count`` is at least ``min_count`` (small-cell suppression);
* no H3 cell overlaps land that is withheld for this model family (tier ``withheld``, a
  secret/sacred label, or no consent), and no cell centre lies in the withheld buffer (cells at
  the coarsest tier resolution overlapping withheld land, plus ``withheld_buffer_rings`` rings);
* a native grid value is never published inside any region, nor in the withheld buffer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h3
import numpy as np
import shapely
from shapely.geometry import Polygon, mapping

from core.ci.report import CiCheck, CiFailure
from core.policy import ScreeningPolicy
from core.sovereignty.h3grid import cells_overlapping, grid_disks, latlng_to_cells
from core.sovereignty.regions import RegionSet

MAX_FAILURES = 50


def _cell_polygon(cell: str) -> Polygon:
    return Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])


def boundary_check(
    published: Any,
    *,
    file: str,
    regions: RegionSet,
    policy: ScreeningPolicy,
    model_family: str | None,
) -> CiCheck:
    """Check every published record of a screen against the regions and the policy."""
    title = "Sovereignty boundary safety"
    features = published.get("features") if isinstance(published, dict) else None
    if not isinstance(features, list):
        return CiCheck(
            "sovereignty",
            title,
            "nothing",
            (CiFailure(file, "features", "a GeoJSON FeatureCollection", type(published).__name__),),
        )
    reasons = {r.region_id: r.withheld_reason(model_family) for r in regions}
    withheld = [r for r in regions if reasons[r.region_id] is not None]
    withheld_land = shapely.union_all([r.geometry for r in withheld]) if withheld else None
    buffer_res = min(
        policy.resolution_internal,
        policy.resolution_public_generalized,
        policy.resolution_restricted,
    )
    buffer_cells = (
        grid_disks(
            np.unique(
                np.concatenate(
                    [cells_overlapping(mapping(r.geometry), buffer_res) for r in withheld]
                )
            ).tolist(),
            policy.withheld_buffer_rings,
        )
        if withheld
        else np.empty(0, dtype=np.uint64)
    )
    failures: list[CiFailure] = []
    h3_count = native_count = 0
    resolutions: set[int] = set()
    points: list[tuple[int, str, float, float]] = []  # (feature index, kind, lat, lon)
    for index, feature in enumerate(features):
        where = f"features[{index}]"
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict):
            failures.append(CiFailure(file, f"{where}.properties", "an object", short(props)))
            continue
        kind = props.get("kind")
        if kind == "h3":
            h3_count += 1
            count = props.get("count")
            if not isinstance(count, int) or count < policy.min_count:
                failures.append(
                    CiFailure(
                        file,
                        f"{where}.properties.count",
                        f">= {policy.min_count} samples (screening.min_count)",
                        str(count),
                        "small cell published",
                    )
                )
            failures += _h3_failures(
                file, where, props, regions, policy, withheld_land, points, index
            )
            if isinstance(props.get("h3"), str) and h3.is_valid_cell(props["h3"]):
                resolutions.add(h3.get_resolution(props["h3"]))
        elif kind == "native":
            native_count += 1
            coords = (feature.get("geometry") or {}).get("coordinates")
            if not (isinstance(coords, list) and len(coords) == 2):
                failures.append(
                    CiFailure(file, f"{where}.geometry", "a Point [lon, lat]", short(coords))
                )
                continue
            lon, lat = float(coords[0]), float(coords[1])
            points.append((index, "native", lat, lon))
            holders = [
                r.region_id for r in regions if r.geometry.intersects(shapely.Point(lon, lat))
            ]
            if holders:
                failures.append(
                    CiFailure(
                        file,
                        f"{where}.geometry",
                        "native grid values only outside every region",
                        f"point ({lat}, {lon}) inside {', '.join(holders)}",
                        "native value published inside a steward region",
                    )
                )
        else:
            failures.append(
                CiFailure(file, f"{where}.properties.kind", "'h3' or 'native'", short(kind))
            )
    if buffer_cells.size and points:
        lats = np.array([p[2] for p in points])
        lons = np.array([p[3] for p in points])
        hit = np.isin(latlng_to_cells(lats, lons, buffer_res), buffer_cells)
        for i in np.flatnonzero(hit).tolist():
            index, kind, plat, plon = points[i]
            failures.append(
                CiFailure(
                    file,
                    f"features[{index}]",
                    f"outside the withheld buffer (res {buffer_res}, "
                    f"{policy.withheld_buffer_rings} ring(s))",
                    f"{kind} record at ({plat:.4f}, {plon:.4f}) in the buffer",
                    "published next to withheld land",
                )
            )
    shown = failures[:MAX_FAILURES]
    if len(failures) > MAX_FAILURES:
        shown.append(
            CiFailure(file, "-", "no more problems", f"{len(failures) - MAX_FAILURES} more")
        )
    res_text = f"res {min(resolutions)}..{max(resolutions)}" if resolutions else "none"
    return CiCheck(
        "sovereignty",
        title,
        f"{h3_count} H3 cells ({res_text}), {native_count} native points against "
        f"{len(regions)} regions ({len(withheld)} withheld for {model_family}), "
        f"min count {policy.min_count}, buffer {buffer_cells.size} cells at res {buffer_res}",
        tuple(shown),
        details={"h3_cells": h3_count, "native_points": native_count},
    )


def _h3_failures(
    file: str,
    where: str,
    props: dict[str, Any],
    regions: RegionSet,
    policy: ScreeningPolicy,
    withheld_land: Any,
    points: list[tuple[int, str, float, float]],
    index: int,
) -> list[CiFailure]:
    cell = props.get("h3")
    if not isinstance(cell, str) or not h3.is_valid_cell(cell):
        return [CiFailure(file, f"{where}.properties.h3", "a valid H3 cell id", short(cell))]
    res = h3.get_resolution(cell)
    failures = []
    if props.get("resolution") != res:
        failures.append(
            CiFailure(
                file,
                f"{where}.properties.resolution",
                f"{res} (the resolution of cell {cell})",
                short(props.get("resolution")),
            )
        )
    lat, lon = h3.cell_to_latlng(cell)
    points.append((index, "h3", lat, lon))
    centre = shapely.Point(lon, lat)
    governing = [r for r in regions if r.geometry.intersects(centre)]
    named = props.get("region_id")
    if not any(r.region_id == named for r in regions):
        failures.append(
            CiFailure(
                file,
                f"{where}.properties.region_id",
                f"one of {[r.region_id for r in regions]}",
                short(named),
                "H3 record of an unknown region",
            )
        )
    else:
        governing.append(next(r for r in regions if r.region_id == named))
    for region in {r.region_id: r for r in governing}.values():
        if region.tier == "withheld":
            continue  # withheld land is checked by overlap below
        allowed = policy.resolution_for(region.tier)
        if allowed is not None and res > allowed:
            failures.append(
                CiFailure(
                    file,
                    f"{where}.properties.h3",
                    f"resolution <= {allowed} (tier {region.tier} of {region.region_id})",
                    f"{cell} at resolution {res}",
                    "cell finer than its tier",
                )
            )
    if withheld_land is not None:
        overlap = _cell_polygon(cell).intersection(withheld_land).area
        if overlap > 0:
            failures.append(
                CiFailure(
                    file,
                    f"{where}.properties.h3",
                    "no overlap with withheld land",
                    f"{cell} overlaps it by {overlap:.4g} square degrees",
                    "cell in withheld land",
                )
            )
    return failures


def short(value: Any) -> str:
    from core.ci.checks import short as _short

    return _short(value, 120)


def read_published(path: Path) -> Any:
    """``published.geojson`` as data (the screen writes plain JSON)."""
    from core.errors import SovereigntyError
    from core.jsonio import read_json_file

    return read_json_file(
        path, display=path.name, max_bytes=256 * 1024 * 1024, error=SovereigntyError
    )
