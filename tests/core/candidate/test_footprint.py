"""The footprint comes from the validation grid; a declared box that disagrees is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.candidate.footprint import (
    FOOTPRINT_TOLERANCE_STEPS,
    check_declared_bbox,
    grid_footprint,
)
from core.candidate.load import check_candidate, load_candidate
from core.errors import CandidateError
from core.policy import ScreeningPolicy
from core.resources import EXAMPLE_REGIONS_PATH
from core.sovereignty.care import concerned_stewards
from core.sovereignty.regions import load_regions

REFERENCE_FOOTPRINT = (-161.25, 13.75, -28.75, 76.25)  # 2.5 deg cells of lon -160..-30, lat 15..75
FOUR_STEWARDS = (
    "steward-aster-river",
    "steward-cedar-lakes",
    "steward-sky-mesa",
    "steward-tidewater",
)


def _declare(candidate: Path, bbox: list[float], version: str | None = None) -> None:
    path = candidate / "model_metadata.json"
    metadata = json.loads(path.read_text())
    metadata["training_domain"]["bbox"] = bbox
    if version is not None:
        metadata["version"] = version
        summary = json.loads((candidate / "model_summary.json").read_text())
        summary["version"] = version
        (candidate / "model_summary.json").write_text(json.dumps(summary))
    path.write_text(json.dumps(metadata))


def test_footprint_is_the_grid_cells_extent() -> None:
    """Cell bounds reach half a step beyond the outer points; descending axes work; poles clip."""
    lat = np.arange(75.0, 14.0, -2.5)  # descending, as reanalysis files store it
    lon = np.arange(-160.0, -29.0, 2.5)
    footprint = grid_footprint(lat, lon, file="v.nc")
    assert footprint.bbox == REFERENCE_FOOTPRINT
    assert footprint.points == (-160.0, 15.0, -30.0, 75.0)
    assert (footprint.lat_step, footprint.lon_step) == (2.5, 2.5)
    assert grid_footprint([88.0, 90.0], [-180.0, 180.0], file="v.nc").bbox == (
        -180.0,
        87.0,
        180.0,
        90.0,
    )


@pytest.mark.parametrize(
    ("lat", "lon", "field", "message"),
    [
        ([10.0], [0.0, 1.0], "lat", "at least two coordinates"),
        ([10.0, 11.0], [0.0, 200.0], "lon", "out of range"),
        ([10.0, 10.0, 11.0], [0.0, 1.0], "lat", "not strictly monotonic"),
    ],
)
def test_unusable_grids_are_named(
    lat: list[float], lon: list[float], field: str, message: str
) -> None:
    """A grid with no cell size, longitudes in 0..360 or repeated coordinates is refused."""
    with pytest.raises(CandidateError, match=message) as caught:
        grid_footprint(lat, lon, file="data/validation.nc")
    assert (caught.value.file, caught.value.field) == ("data/validation.nc", field)


def test_declared_box_may_be_the_points_or_the_cells_but_not_more_or_less() -> None:
    """Points extent and cell bounds agree; a box missing a row or a step too large does not."""
    footprint = grid_footprint(np.arange(15.0, 76.0, 2.5), np.arange(-160.0, -29.0, 2.5), file="v")
    for bbox in ((-160.0, 15.0, -30.0, 75.0), REFERENCE_FOOTPRINT, (-163.75, 11.25, -26.25, 78.75)):
        check_declared_bbox(bbox, footprint, file="m.json", field="bbox", data_file="v")
    assert FOOTPRINT_TOLERANCE_STEPS == 1
    too_small = (-157.5, 15.0, -30.0, 75.0)  # the westernmost column of points is left out
    too_large = (-163.8, 15.0, -30.0, 75.0)  # beyond one step past the cell bounds
    with pytest.raises(CandidateError, match="does not contain the data's grid"):
        check_declared_bbox(too_small, footprint, file="m.json", field="bbox", data_file="v")
    with pytest.raises(CandidateError, match="more than 1 grid step beyond"):
        check_declared_bbox(too_large, footprint, file="m.json", field="bbox", data_file="v")


def test_reference_redeployed_with_a_small_declared_box_is_refused(
    candidate: Path,
) -> None:
    """1.0.1 declaring bbox [-40,15,-30,20] is refused naming the file, field and both boxes."""
    _declare(candidate, [-40.0, 15.0, -30.0, 20.0], version="1.0.1")
    with pytest.raises(CandidateError) as caught:
        load_candidate(candidate)
    error = caught.value
    assert (error.file, error.field) == ("model_metadata.json", "training_domain.bbox")
    assert error.found == [-40.0, 15.0, -30.0, 20.0]
    assert str(list(REFERENCE_FOOTPRINT)) in str(error.expected)
    assert "data/validation.nc" in str(error.expected)
    report = check_candidate(candidate)
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["footprint"]
    assert failed[0].error is not None and failed[0].error["field"] == "training_domain.bbox"


def test_declared_world_box_is_refused(candidate: Path) -> None:
    """A declared box far larger than the data is refused too."""
    _declare(candidate, [-180.0, -90.0, 180.0, 90.0])
    with pytest.raises(CandidateError, match="beyond the data's grid"):
        load_candidate(candidate)


def test_the_data_footprint_concerns_all_four_example_stewards(
    reference_candidate_dir: Path, tmp_path: Path
) -> None:
    """The reference's footprint is computed from its data and concerns every example steward."""
    copy = tmp_path / "c"
    shutil.copytree(reference_candidate_dir, copy)
    _declare(copy, [-160.0, 15.0, -30.0, 75.0])
    candidate = load_candidate(copy)
    assert candidate.footprint == REFERENCE_FOOTPRINT
    regions = load_regions(EXAMPLE_REGIONS_PATH)
    assert concerned_stewards(candidate.footprint, regions, ScreeningPolicy()) == FOUR_STEWARDS
