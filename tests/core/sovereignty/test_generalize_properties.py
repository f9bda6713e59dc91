"""Property tests: over random regions, policies and outputs, the screen never leaks."""

from __future__ import annotations

from typing import Any

import h3
import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box, mapping, shape

from core.policy import ScreeningPolicy
from core.sovereignty.generalize import (
    BUFFER,
    NATIVE,
    PUBLISHED,
    WITHHELD,
    ScreenResult,
    published_geojson_text,
    screen_field,
)
from core.sovereignty.h3grid import latlng_to_cells
from core.sovereignty.regions import RegionSet, regions_from_geojson

TIERS = ["internal", "public-generalized", "restricted", "withheld"]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw: st.DrawFn) -> tuple[RegionSet, ScreeningPolicy, np.ndarray, np.ndarray, np.ndarray]:
    features: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 3))):
        west = draw(st.floats(-104, -96))
        south = draw(st.floats(38, 44))
        width, height = draw(st.floats(0.3, 3)), draw(st.floats(0.3, 3))
        labels = ["tk_secret_sacred"] if draw(st.integers(0, 5)) == 0 else []
        props = {
            "region_id": f"r{i}",
            "nation": f"N{i}",
            "steward_id": f"s{i}",
            "tier": draw(st.sampled_from(TIERS)),
            "labels": labels,
        }
        geometry = mapping(box(west, south, west + width, south + height))
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    regions = regions_from_geojson({"type": "FeatureCollection", "features": features})
    restricted = draw(st.integers(3, 5))
    public = draw(st.integers(restricted, 6))
    policy = ScreeningPolicy(
        resolution_restricted=restricted,
        resolution_public_generalized=public,
        resolution_internal=draw(st.integers(public, 8)),
        min_count=draw(st.integers(1, 25)),
        withheld_buffer_rings=draw(st.integers(0, 2)),
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_points, n_time = draw(st.integers(20, 600)), draw(st.integers(1, 4))
    lat = rng.uniform(36, 48, n_points)
    lon = rng.uniform(-106, -92, n_points)
    values = rng.integers(-400, 400, (n_time, n_points)) / 4.0
    values[rng.random(values.shape) < 0.05] = np.nan
    return regions, policy, lat, lon, values


def _withheld_geometry(regions: RegionSet, result: ScreenResult) -> Any:
    held = [
        r.geometry for r, rep in zip(regions, result.regions, strict=True) if rep.withheld_reason
    ]
    return shapely.union_all(held) if held else None


@SETTINGS
@given(cases())
def test_no_published_cell_is_finer_than_its_tier_or_below_min_count(case: Any) -> None:
    """Every published cell is at exactly its region's tier resolution and has count >= min_count."""
    regions, policy, lat, lon, values = case
    result = screen_field(lat, lon, values, regions, policy)
    reports = {r.region_id: r for r in result.regions}
    for cell in result.cells:
        assert reports[cell.region_id].withheld_reason is None
        assert cell.resolution == policy.resolution_for(regions.get(cell.region_id).tier)
        assert h3.get_resolution(h3.int_to_str(cell.h3)) == cell.resolution
        assert cell.count >= policy.min_count
    for report in result.regions:  # one resolution per region per release
        assert len({c.resolution for c in result.cells if c.region_id == report.region_id}) <= 1


@SETTINGS
@given(cases())
def test_nothing_is_published_in_withheld_areas_or_their_buffer(case: Any) -> None:
    """No published cell or native point lies in a withheld region or its H3 buffer ring."""
    regions, policy, lat, lon, values = case
    result = screen_field(lat, lon, values, regions, policy)
    held = _withheld_geometry(regions, result)
    if held is None:
        assert result.buffer_cells.size == 0
        return
    assert result.buffer_resolution is not None
    for cell in result.cells:
        if policy.withheld_buffer_rings >= 1:  # a full ring keeps even the cell's outline away
            ring = h3.cell_to_boundary(h3.int_to_str(cell.h3))
            assert not shape(
                {"type": "Polygon", "coordinates": [[(b, a) for a, b in ring]]}
            ).intersects(held)
    feeding = result.point_status == PUBLISHED
    if feeding.any():
        cells = latlng_to_cells(lat[feeding], lon[feeding], result.buffer_resolution)
        assert not np.isin(cells, result.buffer_cells).any()
    if result.native_lat.size:
        assert not shapely.intersects_xy(held, result.native_lon, result.native_lat).any()
        native_cells = latlng_to_cells(
            result.native_lat, result.native_lon, result.buffer_resolution
        )
        assert not np.isin(native_cells, result.buffer_cells).any()


@SETTINGS
@given(cases())
def test_every_sample_feeds_at_most_one_record_and_hidden_samples_none(case: Any) -> None:
    """Published records partition the published samples, so differencing records reveals nothing."""
    regions, policy, lat, lon, values = case
    result = screen_field(lat, lon, values, regions, policy)
    published_points = result.point_status == PUBLISHED
    total = sum(c.count for c in result.cells) + int(result.native_count.sum())
    visible = np.isin(result.point_status, [PUBLISHED, NATIVE])
    assert total == int(result.point_count[visible].sum())
    for cell in result.cells:  # recompute each cell from its own points only (independent loop)
        rows = np.flatnonzero(
            published_points
            & (result.point_cell == cell.h3)
            & (result.point_region == [r.region_id for r in result.regions].index(cell.region_id))
        )
        expected = [h3.latlng_to_cell(lat[i], lon[i], cell.resolution) for i in rows]
        assert set(expected) == {h3.int_to_str(cell.h3)}
        samples = values[:, rows]
        assert cell.count == int(np.isfinite(samples).sum())
        assert cell.max == float(np.nanmax(samples))


@SETTINGS
@given(cases(), st.floats(1, 1000))
def test_hidden_values_never_change_a_published_byte(case: Any, shift: float) -> None:
    """Changing any suppressed, withheld or buffered sample leaves published.geojson identical."""
    regions, policy, lat, lon, values = case
    result = screen_field(lat, lon, values, regions, policy)
    hidden = ~np.isin(result.point_status, [PUBLISHED, NATIVE])
    changed = values.copy()
    changed[:, hidden] += round(shift * 4) / 4
    again = screen_field(lat, lon, changed, regions, policy)
    assert published_geojson_text(again) == published_geojson_text(result)
    assert (again.point_status == result.point_status).all()
    assert set(np.unique(result.point_status[hidden])) <= {WITHHELD, BUFFER, 2, 5}
