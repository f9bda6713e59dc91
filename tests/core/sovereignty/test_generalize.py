"""The sovereignty screen, CARE metadata and conflicts on small, hand-checkable releases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pytest
import shapely
import xarray as xr
from shapely.geometry import box, shape

from core.errors import SovereigntyError
from core.policy import ScreeningPolicy
from core.resources import EXAMPLE_REGIONS_PATH
from core.sovereignty.care import care_metadata, find_conflicts, write_conflict_report
from core.sovereignty.generalize import (
    BUFFER,
    NATIVE,
    PUBLISHED,
    SUPPRESSED,
    WITHHELD,
    published_geojson_text,
    screen_field,
    screen_grid,
    write_screen_outputs,
)
from core.sovereignty.regions import RegionSet, load_regions, regions_from_geojson

REPO = Path(__file__).resolve().parents[3]
POLICY = ScreeningPolicy()
FAMILY = "kfm-climate-downscaling"


def _region(
    region_id: str, tier: str, bbox: tuple[float, float, float, float], **extra: Any
) -> dict[str, Any]:
    props = {
        "region_id": region_id,
        "nation": region_id.title(),
        "steward_id": f"s-{region_id}",
        "tier": tier,
    }
    props.update(extra)
    return {
        "type": "Feature",
        "properties": props,
        "geometry": shapely.geometry.mapping(box(*bbox)),
    }


def _regions(*features: dict[str, Any]) -> RegionSet:
    return regions_from_geojson({"type": "FeatureCollection", "features": list(features)})


def _grid(
    lat0: float, lat1: float, lon0: float, lon1: float, step: float
) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = np.meshgrid(np.arange(lat0, lat1, step), np.arange(lon0, lon1, step), indexing="ij")
    return lat.ravel(), lon.ravel()


def _values(n_time: int, n_points: int, seed: int = 0) -> np.ndarray:
    # quarter-integers: sums are exact, so byte comparisons do not depend on summation order
    return np.random.default_rng(seed).integers(1000, 1300, (n_time, n_points)) / 4.0


def test_region_cells_match_an_independent_h3_loop() -> None:
    """Inside a public-generalized region, each cell's count/mean/min/max equals a per-point h3 loop."""
    regions = _regions(_region("a", "public-generalized", (-100, 40, -98, 42)))
    lat, lon = _grid(39.5, 42.5, -100.5, -97.5, 0.1)
    values = _values(3, lat.size)
    result = screen_field(lat, lon, values, regions, POLICY)
    inside = shapely.intersects_xy(regions.get("a").geometry, lon, lat)
    expected: dict[str, list[float]] = {}
    for i in np.flatnonzero(inside):
        expected.setdefault(h3.latlng_to_cell(lat[i], lon[i], 5), []).extend(values[:, i])
    published = {h3.int_to_str(c.h3): c for c in result.cells}
    kept = {k: v for k, v in expected.items() if len(v) >= POLICY.min_count}
    assert set(published) == set(kept) and kept
    for key, samples in kept.items():
        cell = published[key]
        assert (cell.count, cell.resolution, cell.region_id) == (len(samples), 5, "a")
        assert cell.mean == pytest.approx(np.mean(samples))
        assert (cell.min, cell.max) == (min(samples), max(samples))
    report = result.regions[0]
    assert report.cells_suppressed == len(expected) - len(kept)
    assert report.samples_published + report.samples_suppressed == 3 * int(inside.sum())


def test_points_outside_regions_pass_at_the_native_grid() -> None:
    """Outside every region, each point is published as itself with its time statistics."""
    regions = _regions(_region("a", "restricted", (-100, 40, -99, 41)))
    lat = np.array([30.0, 50.0, 40.5])
    lon = np.array([-120.0, -80.0, -99.5])
    values = np.array([[1.0, 2.0, 3.0], [3.0, np.nan, 5.0]])
    result = screen_field(lat, lon, values, regions, POLICY)
    assert result.point_status.tolist() == [NATIVE, NATIVE, SUPPRESSED]
    assert result.native_count.tolist() == [2, 1]
    assert result.native_mean.tolist() == [2.0, 2.0]
    assert result.native_max.tolist() == [3.0, 2.0]


def test_cells_below_min_count_are_suppressed_and_nothing_of_them_is_published() -> None:
    """A cell with fewer samples than min_count is suppressed; its samples appear in no record."""
    regions = _regions(_region("a", "public-generalized", (-100, 40, -98, 42)))
    lat, lon = _grid(40.05, 42, -99.95, -98, 0.1)
    policy = ScreeningPolicy(min_count=3)
    values = _values(2, lat.size)  # 2 samples per point: cells with one point are suppressed
    result = screen_field(lat, lon, values, regions, policy)
    suppressed = result.point_status == SUPPRESSED
    assert suppressed.any() and (result.point_status == PUBLISHED).any()
    assert all(c.count >= 3 for c in result.cells)
    published_cells = {c.h3 for c in result.cells}
    assert not published_cells & set(result.point_cell[suppressed].tolist())


def test_withheld_and_secret_sacred_regions_publish_nothing_and_their_buffer_neither() -> None:
    """Withheld or secret/sacred land publishes nothing; native points within the ring are withheld."""
    regions = _regions(
        _region("w", "withheld", (-100, 40, -99, 41)),
        _region("s", "public-generalized", (-90, 40, -89, 41), labels=["tk_secret_sacred"]),
    )
    lat = np.array([40.5, 40.5, 41.05, 40.5, 30.0])
    lon = np.array([-99.5, -89.5, -99.5, -89.05 + 0.1, -120.0])
    result = screen_field(lat, lon, _values(20, lat.size), regions, POLICY)
    assert result.point_status.tolist() == [WITHHELD, WITHHELD, BUFFER, BUFFER, NATIVE]
    assert result.cells == ()
    assert result.buffer_resolution == 4
    reports = {r.region_id: r for r in result.regions}
    assert reports["s"].withheld_reason == "tk_secret_sacred label"
    assert reports["w"].samples_withheld == 20


def test_consent_not_granted_withholds_when_a_model_family_is_screened() -> None:
    """With a model family given, a region without granted consent publishes nothing."""
    regions = _regions(
        _region("a", "public-generalized", (-100, 40, -98, 42), consent={FAMILY: "withdrawn"})
    )
    lat, lon = _grid(40.05, 42, -99.95, -98, 0.25)
    values = _values(12, lat.size)
    assert screen_field(lat, lon, values, regions, POLICY).cells
    screened = screen_field(lat, lon, values, regions, POLICY, model_family=FAMILY)
    assert screened.cells == ()
    assert screened.regions[0].withheld_reason == f"consent withdrawn for {FAMILY}"


def test_overlapping_regions_give_each_point_to_the_most_restrictive() -> None:
    """Where a restricted region overlaps an internal one, shared points are published at res 4."""
    regions = _regions(
        _region("inner", "internal", (-100, 40, -98, 42)),
        _region("outer", "restricted", (-99, 41, -97, 43)),
    )
    lat, lon = _grid(40.05, 43, -99.95, -97, 0.25)
    result = screen_field(lat, lon, _values(12, lat.size), regions, POLICY)
    shared = shapely.intersects_xy(box(-99, 41, -98, 42), lon, lat)
    outer = [r.region_id for r in result.regions].index("outer")
    assert (result.point_region[shared] == outer).all()
    assert {c.resolution for c in result.cells if c.region_id == "outer"} == {4}
    assert {c.resolution for c in result.cells if c.region_id == "inner"} == {9}


def test_outputs_are_byte_identical_across_runs_and_point_orders(tmp_path: Path) -> None:
    """The same release, in any point order, writes the same published.geojson and report.json."""
    regions = load_regions(EXAMPLE_REGIONS_PATH)
    lat, lon = _grid(33, 51, -113, -75, 0.5)
    values = _values(4, lat.size)
    order = np.random.default_rng(1).permutation(lat.size)
    first = write_screen_outputs(screen_field(lat, lon, values, regions, POLICY), tmp_path / "a")
    second = write_screen_outputs(
        screen_field(lat[order], lon[order], values[:, order], regions, POLICY), tmp_path / "b"
    )
    for one, two in zip(first, second, strict=True):
        assert one.read_bytes() == two.read_bytes()


def test_published_geojson_round_trips_and_carries_what_stewards_need(tmp_path: Path) -> None:
    """published.geojson reads back (json and geopandas) with h3 polygons, native points and report."""
    import geopandas

    regions = load_regions(EXAMPLE_REGIONS_PATH)
    lat, lon = _grid(33, 51, -113, -75, 0.25)
    result = screen_field(lat, lon, _values(4, lat.size), regions, POLICY, model_family=FAMILY)
    published, report_path = write_screen_outputs(result, tmp_path)
    document = json.loads(published.read_text())
    kinds = {f["properties"]["kind"] for f in document["features"]}
    assert kinds == {"h3", "native"}
    for feature in document["features"]:
        props = feature["properties"]
        if props["kind"] == "h3":
            assert h3.get_resolution(props["h3"]) == props["resolution"]
            assert shape(feature["geometry"]).contains(
                shapely.Point(h3.cell_to_latlng(props["h3"])[::-1])
            )
        else:
            assert props["region_id"] is None and feature["geometry"]["type"] == "Point"
    assert len(geopandas.read_file(published)) == len(document["features"])
    report = json.loads(report_path.read_text())
    by_id = {r["region_id"]: r for r in report["regions"]}
    assert by_id["example-sky-mesa"]["cells_published"] == 0
    assert by_id["example-sky-mesa"]["samples_withheld"] > 0
    assert by_id["example-aster-river"]["resolution"] == 5
    assert by_id["example-cedar-lakes"]["resolution"] == 4
    assert by_id["example-tidewater"]["steward_id"] == "steward-tidewater"
    n_cells = sum(r["cells_published"] for r in report["regions"])
    assert n_cells == sum(1 for f in document["features"] if f["properties"]["kind"] == "h3")


def test_derived_fields_reveal_nothing_finer_than_the_published_cells() -> None:
    """Reshuffling samples inside a cell, or changing withheld samples, leaves every published byte."""
    regions = _regions(
        _region("a", "public-generalized", (-100, 40, -98, 42)),
        _region("w", "withheld", (-96, 40, -95, 41)),
    )
    lat, lon = _grid(39.05, 43, -101, -93, 0.25)
    values = _values(3, lat.size)
    result = screen_field(lat, lon, values, regions, POLICY)
    before = published_geojson_text(result)
    assert '"anomaly":' in before
    changed = values.copy()
    for cell in result.cells:  # reverse the samples of each published cell across its points
        rows = np.flatnonzero((result.point_cell == cell.h3) & (result.point_status == PUBLISHED))
        changed[:, rows] = changed[:, rows].ravel()[::-1].reshape(changed[:, rows].shape)
    hidden = np.isin(result.point_status, [SUPPRESSED, WITHHELD, BUFFER])
    assert hidden.any()
    changed[:, hidden] += 37.25
    after = published_geojson_text(screen_field(lat, lon, changed, regions, POLICY))
    assert after == before


def test_screen_grid_equals_screen_field_on_the_flattened_grid() -> None:
    """A (time, lat, lon) DataArray is screened as its grid points; bad dims are refused."""
    regions = _regions(_region("a", "restricted", (-100, 40, -98, 42)))
    lats, lons = np.arange(39.0, 43, 0.5), np.arange(-101.0, -97, 0.5)
    data = np.random.default_rng(2).integers(0, 100, (2, lats.size, lons.size)) / 4.0
    field = xr.DataArray(
        data,
        dims=("time", "lat", "lon"),
        coords={"lat": lats, "lon": lons},
        name="air",
        attrs={"units": "K"},
    )
    lat2, lon2 = np.meshgrid(lats, lons, indexing="ij")
    flat = screen_field(
        lat2.ravel(), lon2.ravel(), data.reshape(2, -1), regions, POLICY, variable="air", units="K"
    )
    assert published_geojson_text(screen_grid(field, regions, POLICY)) == published_geojson_text(
        flat
    )
    with pytest.raises(SovereigntyError, match="dimensions"):
        screen_grid(field.rename(lat="y"), regions, POLICY)


def test_mismatched_or_out_of_range_points_are_refused() -> None:
    """Values that do not match the points, or lat/lon out of range, are clear errors."""
    regions = _regions(_region("a", "restricted", (-100, 40, -98, 42)))
    with pytest.raises(SovereigntyError, match="do not match"):
        screen_field(np.zeros(3), np.zeros(3), np.zeros((2, 4)), regions, POLICY)
    with pytest.raises(SovereigntyError) as caught:
        screen_field(
            np.array([40.0, 95.0]), np.array([-100.0, -100.0]), np.zeros((1, 2)), regions, POLICY
        )
    assert caught.value.field == "point[1]"


def test_conflicts_list_overlapped_regions_without_granted_consent(tmp_path: Path) -> None:
    """withdrawn, denied, pending and missing consent conflict; granted and distant regions do not."""
    regions = _regions(
        _region("granted", "restricted", (-100, 40, -99, 41), consent={FAMILY: "granted"}),
        _region("gone", "restricted", (-98, 40, -97, 41), consent={FAMILY: "withdrawn"}),
        _region("no", "restricted", (-96, 40, -95, 41), consent={FAMILY: "denied"}),
        _region("wait", "restricted", (-94, 40, -93, 41), consent={FAMILY: "pending"}),
        _region("silent", "restricted", (-92, 40, -91, 41)),
        _region("far", "restricted", (-60, 40, -59, 41), consent={FAMILY: "denied"}),
    )
    conflicts = find_conflicts((-101, 39, -90, 42), regions, FAMILY, screening=POLICY)
    assert [(c.region_id, c.reason) for c in conflicts] == [
        ("gone", "consent withdrawn"),
        ("no", "consent denied"),
        ("silent", "no consent recorded"),
        ("wait", "consent pending"),
    ]
    assert conflicts[0].overlap_bbox == (-98.0, 40.0, -97.0, 41.0)
    # the western half of the granted region: beyond the withheld buffer of "gone"
    west_half = shapely.geometry.mapping(box(-100, 40, -99.5, 41))
    assert find_conflicts(west_half, regions, FAMILY, screening=POLICY) == []
    path = write_conflict_report(conflicts, tmp_path, model_family=FAMILY)
    assert path is not None and json.loads(path.read_text())["conflicts"][0]["region_id"] == "gone"
    assert write_conflict_report([], tmp_path / "none", model_family=FAMILY) is None
    with pytest.raises(SovereigntyError, match="bbox"):
        find_conflicts((1, 2, 0, 3), regions, FAMILY, screening=POLICY)


def test_example_regions_grant_the_reference_family_no_conflict_over_its_domain() -> None:
    """The reference model's domain covers every example region; none conflicts for its family."""
    regions = load_regions(EXAMPLE_REGIONS_PATH)
    domain = (-160.0, 15.0, -30.0, 75.0)
    assert find_conflicts(domain, regions, FAMILY, screening=POLICY) == []
    assert {
        c.region_id for c in find_conflicts(domain, regions, "kfm-hazard-scoring", screening=POLICY)
    } == {
        "example-aster-river",
        "example-cedar-lakes",
        "example-sky-mesa",
        "example-tidewater",
    }


def test_care_metadata_names_stewards_labels_and_scope() -> None:
    """The kfm:care block lists the concerned stewards, labels, resolutions and scope."""
    regions = load_regions(EXAMPLE_REGIONS_PATH)
    care = care_metadata(regions, POLICY, model_family=FAMILY, footprint=(-110, 40, -85, 51))[
        "kfm:care"
    ]
    authority = care["screening"]["authority_to_control"]
    assert [a["region_id"] for a in authority] == ["example-aster-river", "example-cedar-lakes"]
    assert care["steward_contacts"] == ["steward-aster-river", "steward-cedar-lakes"]
    assert care["labels"] == ["bc_provenance", "tk_attribution", "tk_culturally_sensitive"]
    assert [a["resolution"] for a in authority] == [5, 4]
    assert [a["consent"] for a in authority] == ["granted", "granted"]
    assert (care["scope"], care["masking"]) == ("public-generalized", "h3-climate-generalized")
    everything = care_metadata(regions, POLICY, model_family=FAMILY)["kfm:care"]
    assert everything["scope"] == "internal"
    sky = [a for a in everything["screening"]["authority_to_control"] if a["tier"] == "withheld"]
    assert sky[0]["resolution"] is None and sky[0]["published"] is False
    nothing = care_metadata(regions, POLICY, model_family=FAMILY, footprint=(-150, 60, -140, 65))
    assert "scope" not in nothing["kfm:care"]  # the candidate's declared scope stands
    assert nothing["kfm:care"]["masking"] == "none"


def test_care_block_merges_into_a_valid_item(reference_candidate_dir: Path) -> None:
    """The screen's CARE block passes the kfm: extension schema once merged into the item."""
    from core.candidate.load import load_candidate
    from core.describe.extension import care_schema
    from core.describe.stac import build_item

    regions = load_regions(EXAMPLE_REGIONS_PATH)
    block = care_metadata(regions, POLICY, model_family=FAMILY, conflicts=[], target_grid_deg=0.05)
    candidate = load_candidate(reference_candidate_dir)
    care = build_item(candidate, provenance_json=b"{}\n", care_extra=block)["properties"][
        "kfm:care"
    ]
    assert care["authority_to_control"] == candidate.metadata.care.authority_to_control
    assert care["screening"] == block["kfm:care"]["screening"]
    assert care["notices"] == sorted({n for r in regions for n in r.properties.notices})
    assert set(care) <= set(care_schema()["properties"])


def test_cli_screen_runs_the_reference_model_finer_than_the_tiers(
    reference_candidate_dir: Path, tmp_path: Path
) -> None:
    """`kfm screen` aggregates fine-grid outputs to H3 inside regions and flags withdrawn consent."""
    from typer.testing import CliRunner

    from core.cli import app

    regions_file = EXAMPLE_REGIONS_PATH
    out = tmp_path / "sovereignty"
    args = [
        "screen",
        str(reference_candidate_dir),
        "--regions",
        str(regions_file),
        "--out",
        str(out),
        "--resolution-deg",
        "0.1",
        "--json",
    ]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    report = json.loads((out / "report.json").read_text())
    by_id = {r["region_id"]: r for r in report["regions"]}
    steps = report["time_steps"]
    cells = [
        f["properties"] for f in json.loads((out / "published.geojson").read_text())["features"]
    ]
    aster = [c for c in cells if c["region_id"] == "example-aster-river"]
    assert aster and all(c["resolution"] == 5 for c in aster)
    assert any(c["count"] > steps for c in aster)  # several 0.25 degree points per res-5 cell
    assert (
        by_id["example-sky-mesa"]["samples_withheld"] > 0
        and by_id["example-sky-mesa"]["cells_published"] == 0
    )
    assert report["outside_regions"]["points_published"] > 1000  # the native 2.5 degree grid
    assert not (out / "sovereignty_conflict.json").exists()
    # 4 validation steps x 1 point per res-9 cell < 11: internal cells are all suppressed,
    # so the release holds no internal-tier cell and its scope is public-generalized
    assert by_id["example-tidewater"]["cells_published"] == 0
    assert json.loads((out / "care.json").read_text())["kfm:care"]["scope"] == "public-generalized"

    document = json.loads(regions_file.read_text())
    document["features"][0]["properties"]["consent"]["kfm-climate-downscaling"] = "withdrawn"
    withdrawn = tmp_path / "withdrawn.geojson"
    withdrawn.write_text(json.dumps(document))
    run = CliRunner().invoke(
        app, [*args[:3], str(withdrawn), "--out", str(tmp_path / "w"), "--json"]
    )
    assert run.exit_code == 1
    conflict = json.loads((tmp_path / "w" / "sovereignty_conflict.json").read_text())
    assert [c["reason"] for c in conflict["conflicts"]] == ["consent withdrawn"]
