"""screen_candidate: the one screening pipeline behind kfm screen, deploy and ci."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.geometry
import xarray as xr

from core.candidate.load import load_candidate
from core.errors import SovereigntyError
from core.policy import ScreeningPolicy
from core.resources import EXAMPLE_REGIONS_PATH
from core.sovereignty.care import concerned_stewards, touched_regions
from core.sovereignty.generalize import published_geojson_text
from core.sovereignty.regions import load_regions, regions_from_geojson
from core.sovereignty.screen import (
    CandidateScreen,
    fine_grid,
    region_grids,
    release_points,
    screen_candidate,
)

REPO = Path(__file__).resolve().parents[3]
POLICY = ScreeningPolicy()


@pytest.fixture(scope="module")
def screened(reference_candidate_dir: Path) -> CandidateScreen:
    """The reference candidate screened at the default 0.05 degree step."""
    return screen_candidate(
        load_candidate(reference_candidate_dir),
        load_regions(EXAMPLE_REGIONS_PATH),
        POLICY,
    )


def test_default_step_publishes_cells_in_public_and_restricted_regions(
    screened: CandidateScreen,
) -> None:
    """At 0.05 degrees the public-generalized and restricted regions publish H3 cells >= min_count."""
    by_id = {r.region_id: r for r in screened.result.regions}
    assert screened.resolution_deg == 0.05
    assert by_id["example-aster-river"].cells_published > 0
    assert by_id["example-cedar-lakes"].cells_published > 0
    assert by_id["example-sky-mesa"].cells_published == 0
    assert all(c.count >= POLICY.min_count for c in screened.result.cells)
    assert {c.resolution for c in screened.result.cells} == {4, 5}
    assert screened.concerned_stewards == tuple(sorted(r.steward_id for r in by_id.values()))
    assert screened.conflicts == ()


def test_write_is_byte_identical_and_round_trips(screened: CandidateScreen, tmp_path: Path) -> None:
    """write() gives the same bytes twice; care.json reads back as the CARE block."""
    first = screened.write(tmp_path / "a")
    second = screened.write(tmp_path / "b")
    assert [p.name for p in first] == ["published.geojson", "report.json", "care.json"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert json.loads((tmp_path / "a" / "care.json").read_text()) == screened.care


def test_release_points_keep_overlapping_fine_points_once() -> None:
    """A fine point in two overlapping region boxes is one release point; outside, native only."""
    regions = regions_from_geojson(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[w, 0], [w + 2, 0], [w + 2, 2], [w, 2], [w, 0]]],
                    },
                    "properties": {
                        "region_id": f"r{w}",
                        "nation": "n",
                        "steward_id": "s",
                        "tier": "public-generalized",
                    },
                }
                for w in (0, 1)
            ],
        }
    )
    lat, lon = fine_grid((0, 0, 3, 2), 0.5)

    def field(la: np.ndarray, lo: np.ndarray) -> xr.DataArray:
        values = np.arange(2 * la.size * lo.size, dtype=float).reshape(2, la.size, lo.size)
        return xr.DataArray(values, coords={"time": [0, 1], "lat": la, "lon": lo})

    native = field(np.array([1.0, 5.0]), np.array([1.0, 10.0]))
    out_lat, out_lon, values = release_points([field(lat, lon), field(lat, lon)], native, regions)
    pairs = list(zip(out_lat.tolist(), out_lon.tolist(), strict=True))
    assert len(pairs) == len(set(pairs)) == lat.size * lon.size + 3
    assert (1.0, 1.0) in pairs and (5.0, 10.0) in pairs and values.shape == (2, len(pairs))


def test_out_of_range_step_is_refused(reference_candidate_dir: Path) -> None:
    """A non-positive grid step is a SovereigntyError naming resolution_deg."""
    with pytest.raises(SovereigntyError, match="resolution_deg"):
        screen_candidate(
            load_candidate(reference_candidate_dir),
            load_regions(EXAMPLE_REGIONS_PATH),
            POLICY,
            resolution_deg=0.0,
        )


PARTIAL_LAT, PARTIAL_LON = (40.0, 55.0), (-115.0, -85.0)  # Aster River and Cedar Lakes only


@pytest.fixture(scope="module")
def partial_candidate(
    reference_candidate_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The reference with its data cut to lat 40..55, lon -115..-85, declaring that box."""
    root = tmp_path_factory.mktemp("partial") / "candidate"
    shutil.copytree(reference_candidate_dir, root)
    for name in ("data/validation.nc", "data/reference.nc"):
        with xr.open_dataset(root / name) as ds:
            cut = ds.where(
                (ds.lat >= PARTIAL_LAT[0]) & (ds.lat <= PARTIAL_LAT[1])
                & (ds.lon >= PARTIAL_LON[0]) & (ds.lon <= PARTIAL_LON[1]),
                drop=True,
            ).load()  # fmt: skip
        cut.to_netcdf(root / name, engine="netcdf4")
    metadata = json.loads((root / "model_metadata.json").read_text())
    metadata["training_domain"]["bbox"] = [
        PARTIAL_LON[0],
        PARTIAL_LAT[0],
        *[PARTIAL_LON[1], PARTIAL_LAT[1]],
    ]
    (root / "model_metadata.json").write_text(json.dumps(metadata))
    return root


def test_partial_data_concerns_only_the_stewards_of_its_footprint(partial_candidate: Path) -> None:
    """Data over two example regions concerns their two stewards and publishes nothing beyond."""
    candidate = load_candidate(partial_candidate)
    assert candidate.footprint == (-116.25, 38.75, -83.75, 56.25)
    screened = screen_candidate(candidate, load_regions(EXAMPLE_REGIONS_PATH), POLICY)
    concerned = ("steward-aster-river", "steward-cedar-lakes")
    assert screened.concerned_stewards == concerned
    assert screened.care["kfm:care"]["steward_contacts"] == list(concerned)
    authority = screened.care["kfm:care"]["screening"]["authority_to_control"]
    assert [a["steward_id"] for a in authority] == list(concerned)
    assert {c.region_id for c in screened.result.cells} == {
        "example-aster-river",
        "example-cedar-lakes",
    }
    footprint = shapely.box(*candidate.footprint)
    features = json.loads(published_geojson_text(screened.result))["features"]
    assert features and all(
        shapely.geometry.shape(f["geometry"]).intersects(footprint) for f in features
    )
    west, south, east, north = candidate.footprint
    assert (screened.result.native_lon >= west).all() and (screened.result.native_lon <= east).all()
    assert (screened.result.native_lat >= south).all() and (
        screened.result.native_lat <= north
    ).all()


def test_the_model_never_runs_beyond_the_footprint() -> None:
    """Fine grids cover region boxes cut to the footprint; a region beyond it gets none."""
    regions = load_regions(EXAMPLE_REGIONS_PATH)
    footprint = (-116.25, 38.75, -83.75, 56.25)
    grids = region_grids(regions, footprint, 0.05)
    assert len(grids) == 2  # Sky Mesa and Tidewater lie beyond the footprint
    for lat, lon in grids:
        assert lat.min() >= footprint[1] and lat.max() <= footprint[3]
        assert lon.min() >= footprint[0] and lon.max() <= footprint[2]
    whole = region_grids(regions, (-180.0, -90.0, 180.0, 90.0), 0.05)
    assert [(la.size, lo.size) for la, lo in whole] == [
        (fine_grid(r.geometry.bounds, 0.05)[0].size, fine_grid(r.geometry.bounds, 0.05)[1].size)
        for r in regions
    ]


def test_a_footprint_ending_in_a_regions_buffer_concerns_its_steward() -> None:
    """A footprint stopping 0.1 deg short of Aster River (inside its buffer) concerns its steward."""
    regions = load_regions(EXAMPLE_REGIONS_PATH)
    west_of_aster = (-120.0, 40.0, -108.5, 50.0)  # Aster River starts at -108.4
    assert concerned_stewards(west_of_aster, regions, POLICY) == ("steward-aster-river",)
    far_west = (-125.0, 40.0, -112.0, 50.0)
    assert concerned_stewards(far_west, regions, POLICY) == ()
    assert touched_regions(west_of_aster, regions, POLICY)[0].region_id == "example-aster-river"
