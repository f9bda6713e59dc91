"""screen_candidate: the one screening pipeline behind kfm screen, deploy and ci."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from core.candidate.load import load_candidate
from core.errors import SovereigntyError
from core.policy import ScreeningPolicy
from core.resources import EXAMPLE_REGIONS_PATH
from core.sovereignty.regions import load_regions, regions_from_geojson
from core.sovereignty.screen import CandidateScreen, fine_grid, release_points, screen_candidate

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
