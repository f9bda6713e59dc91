"""CARE metadata for the STAC item, and sovereignty conflicts for the sovereignty gate.

The sovereignty stage's CARE block for the STAC item: :func:`care_metadata` returns
``{"kfm:care": {...}}``, which the describe stage merges into the candidate's own declared CARE
metadata (``model_metadata.json`` ``care``: ``authority_to_control``, ``collective_benefit``,
``responsibility``, ``ethics``...). The ``kfm:`` STAC extension schema
(:func:`core.describe.extension.kfm_extension_schema`, ``schemas/stac-kfm-extension.schema.json``)
defines the merged block; this is the part the screen supplies, every list sorted::

    {"kfm:care": {
        "scope": "public-generalized" | "internal",   # only when a region is concerned:
                                                      # replaces the declared scope
        "masking": "h3-climate-generalized" | "none",
        "labels": [str], "notices": [str],            # Local Contexts Label / Notice ids,
        "steward_contacts": [str],                    # added to the declared lists
        "notes": [str],
        "screening": {
            "authority_to_control": [                 # one entry per region the footprint touches
                {"region_id": str, "nation": str, "steward_id": str, "tier": str,
                 "consent": "granted" | "pending" | "withdrawn" | "denied" | null,
                 "published": bool, "withheld_reason": str | null,
                 "resolution": int | null,            # H3 resolution; null = nothing published
                 ["cells_published": int, "cells_suppressed": int]}],   # when screened
            "min_count": int, "withheld_buffer_rings": int,
            ["target_grid_deg": float], ["conflicts": int],
            ["report": "sovereignty/report.json"]}}}

``scope`` is ``internal`` when the release holds cells of an ``internal``-tier region (so it must
not be published as is), ``public-generalized`` when any region is screened; when no region is
concerned the candidate's declared scope stands and ``masking`` is ``none``.

The footprint is the one computed from the candidate's validation grid
(:attr:`core.candidate.load.Candidate.footprint`), never a box the candidate declares. A region
**concerns** a model when the footprint overlaps the region grown by the policy's withheld buffer
(:func:`region_reach`: the region plus ``withheld_buffer_rings`` H3 rings at the coarsest tier's
resolution, the same rings the screen withholds around withheld land): a model whose outputs
stop just short of a nation's boundary still publishes next to it, so its steward is asked.
:func:`touched_regions` lists the concerned regions (sharing only a border does not count);
:func:`concerned_stewards` their stewards; :func:`find_conflicts` those whose steward has not
granted consent for the model family; :func:`write_conflict_report` writes them to
``sovereignty_conflict.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeAlias

import shapely
from pydantic import BaseModel, ConfigDict
from shapely.geometry import Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry

from core.errors import SovereigntyError
from core.policy import ScreeningPolicy
from core.sovereignty.generalize import MASKING, ScreenResult
from core.sovereignty.h3grid import cell_ring_lnglat, cells_overlapping, grid_disks
from core.sovereignty.regions import Region, RegionSet

Footprint: TypeAlias = BaseGeometry | Mapping[str, Any] | Sequence[float]


class Conflict(BaseModel):
    """A region the model's footprint overlaps without its steward's consent."""

    model_config = ConfigDict(frozen=True)

    region_id: str
    nation: str
    steward_id: str
    model_family: str
    consent: str | None  # None: the steward recorded nothing for this family
    reason: str
    overlap_bbox: tuple[float, float, float, float]


def footprint_geometry(footprint: Footprint) -> BaseGeometry:
    """A footprint as a shapely geometry: geometry, GeoJSON geometry dict or lon/lat bbox."""
    if isinstance(footprint, BaseGeometry):
        return footprint
    if isinstance(footprint, Mapping):
        try:
            return shape(footprint)
        except (ValueError, TypeError, AttributeError, KeyError) as error:
            raise SovereigntyError(
                f"footprint is not a GeoJSON geometry: {error}",
                field="footprint",
                expected="a GeoJSON geometry (lon/lat)",
                found=str(dict(footprint))[:120],
            ) from error
    values = [float(v) for v in footprint]
    if len(values) != 4 or values[0] > values[2] or values[1] > values[3]:
        raise SovereigntyError(
            "footprint bbox malformed",
            field="footprint",
            expected="(min_lon, min_lat, max_lon, max_lat)",
            found=values,
        )
    return box(*values)


def region_reach(region: Region, screening: ScreeningPolicy) -> BaseGeometry:
    """The region grown by the withheld buffer: its land plus every H3 cell (at the policy's
    buffer resolution) within ``withheld_buffer_rings`` rings of a cell overlapping it."""
    return _reach(
        shapely.to_wkb(region.geometry),
        screening.buffer_resolution,
        screening.withheld_buffer_rings,
    )


@lru_cache(maxsize=256)
def _reach(geometry_wkb: bytes, resolution: int, rings: int) -> BaseGeometry:
    """:func:`region_reach` of one geometry (cached: a deploy asks several stages for it)."""
    land = shapely.from_wkb(geometry_wkb)
    cells = grid_disks(cells_overlapping(mapping(land), resolution).tolist(), rings)
    outlines = [Polygon(cell_ring_lnglat(int(c))) for c in cells.tolist()]
    return shapely.union_all([land, *outlines])


def touched_regions(
    footprint: Footprint, regions: RegionSet, screening: ScreeningPolicy
) -> list[Region]:
    """Regions whose land or withheld buffer the footprint overlaps (a shared border only does
    not count), in the region set's order."""
    geometry = footprint_geometry(footprint)
    touched = []
    for region in regions:
        reach = region_reach(region, screening)
        if geometry.intersects(reach) and not geometry.touches(reach):
            touched.append(region)
    return touched


def concerned_stewards(
    footprint: Footprint, regions: RegionSet, screening: ScreeningPolicy
) -> tuple[str, ...]:
    """Roster ids of the stewards of :func:`touched_regions`, sorted and unique."""
    touched = touched_regions(footprint, regions, screening)
    return tuple(sorted({r.properties.steward_id for r in touched}))


def find_conflicts(
    footprint: Footprint, regions: RegionSet, model_family: str, *, screening: ScreeningPolicy
) -> list[Conflict]:
    """Concerned regions (:func:`touched_regions`) whose consent for ``model_family`` is not
    granted; ``overlap_bbox`` bounds the footprint's overlap with the region's land (with its
    buffer when the footprint reaches only that)."""
    geometry = footprint_geometry(footprint)
    conflicts = []
    for region in touched_regions(geometry, regions, screening):
        state = region.consent_for(model_family)
        if state == "granted":
            continue
        reason = {
            "withdrawn": "consent withdrawn",
            "denied": "consent denied",
            "pending": "consent pending",
        }.get(state or "", "no consent recorded")
        overlap = geometry.intersection(region.geometry)
        if overlap.is_empty:  # the footprint reaches only the region's buffer
            overlap = geometry.intersection(region_reach(region, screening))
        bounds = shapely.bounds(overlap).tolist()
        conflicts.append(
            Conflict(
                region_id=region.region_id,
                nation=region.properties.nation,
                steward_id=region.properties.steward_id,
                model_family=model_family,
                consent=state,
                reason=reason,
                overlap_bbox=(
                    round(bounds[0], 6),
                    round(bounds[1], 6),
                    round(bounds[2], 6),
                    round(bounds[3], 6),
                ),
            )
        )
    return sorted(conflicts, key=lambda c: c.region_id)


def write_conflict_report(
    conflicts: Sequence[Conflict], out_dir: Path | str, *, model_family: str
) -> Path | None:
    """Write ``sovereignty_conflict.json`` when there are conflicts; return its path or None."""
    if not conflicts:
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sovereignty_conflict.json"
    document = {
        "model_family": model_family,
        "blocking": True,
        "conflicts": [c.model_dump(mode="json") for c in conflicts],
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def care_metadata(
    regions: RegionSet,
    policy: ScreeningPolicy,
    *,
    model_family: str,
    footprint: Footprint | None = None,
    result: ScreenResult | None = None,
    conflicts: Sequence[Conflict] | None = None,
    target_grid_deg: float | None = None,
) -> dict[str, Any]:
    """The ``kfm:care`` block for the STAC item (shape in the module docstring)."""
    concerned = list(regions) if footprint is None else touched_regions(footprint, regions, policy)
    screened = {} if result is None else {r.region_id: r for r in result.regions}
    authority: list[dict[str, Any]] = []
    for region in sorted(concerned, key=lambda r: r.region_id):
        why = region.withheld_reason(model_family)
        entry: dict[str, Any] = {
            "region_id": region.region_id,
            "nation": region.properties.nation,
            "steward_id": region.properties.steward_id,
            "tier": region.tier,
            "consent": region.consent_for(model_family),
            "published": why is None,
            "withheld_reason": why,
            "resolution": None if why else policy.resolution_for(region.tier),
        }
        outcome = screened.get(region.region_id)
        if outcome is not None:
            entry["cells_published"] = outcome.cells_published
            entry["cells_suppressed"] = outcome.cells_suppressed
        authority.append(entry)
    internal_published = result is not None and any(c.tier == "internal" for c in result.cells)
    care: dict[str, Any] = {}
    if internal_published or (result is None and any(r.tier == "internal" for r in concerned)):
        care["scope"] = "internal"
    elif concerned:
        care["scope"] = "public-generalized"
    notes = []
    if concerned:
        notes.append("Model deployment generalized due to sovereignty protections")
    if any(not a["published"] for a in authority):
        notes.append("Nothing is published in withheld regions or within their H3 buffer")
    if care.get("scope") == "internal":
        notes.append("Holds internal-tier cells: for the stewards and the project only")
    screening: dict[str, Any] = {
        "authority_to_control": authority,
        "min_count": policy.min_count,
        "withheld_buffer_rings": policy.withheld_buffer_rings,
    }
    if target_grid_deg is not None:
        screening["target_grid_deg"] = target_grid_deg
    if conflicts is not None:
        screening["conflicts"] = len(conflicts)
    if result is not None:
        screening["report"] = "sovereignty/report.json"
    care.update(
        {
            "masking": MASKING if concerned else "none",
            "labels": sorted({label for r in concerned for label in r.properties.labels}),
            "notices": sorted({n for r in concerned for n in r.properties.notices}),
            "steward_contacts": sorted({r.properties.steward_id for r in concerned}),
            "notes": notes,
            "screening": screening,
        }
    )
    return {"kfm:care": care}
