"""Regions files: the example file, the schema, and clear errors for malformed steward files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import shapely

from core.errors import SovereigntyError
from core.jsonio import dumps
from core.resources import EXAMPLE_REGIONS_PATH
from core.sovereignty.regions import (
    LOCAL_CONTEXTS,
    load_regions,
    regions_from_geojson,
    regions_json_schema,
)

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = EXAMPLE_REGIONS_PATH


def _example_document() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def _write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "regions.geojson"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _error(tmp_path: Path, document: Any) -> SovereigntyError:
    path = _write(tmp_path, document)
    with pytest.raises(SovereigntyError) as caught:
        load_regions(path)
    assert caught.value.file == str(path)
    return caught.value


def test_example_regions_cover_every_tier_inside_the_reference_domain() -> None:
    """The shipped example has 4 fictional regions, one per tier, inside lat 15..75, lon -160..-30."""
    regions = load_regions(EXAMPLE)
    assert sorted(r.tier for r in regions) == sorted(
        ["internal", "public-generalized", "restricted", "withheld"]
    )
    for region in regions:
        assert region.properties.example is True
        assert "fictional" in region.properties.nation
        min_lon, min_lat, max_lon, max_lat = region.geometry.bounds
        assert min_lon >= -160 and max_lon <= -30 and min_lat >= 15 and max_lat <= 75
    withheld = [r for r in regions if r.withheld_reason() is not None]
    assert [r.region_id for r in withheld] == ["example-sky-mesa"]
    assert withheld[0].secret_sacred


def test_example_regions_validate_against_the_exported_schema() -> None:
    """schemas/regions.schema.json is current and the example file validates against it."""
    import jsonschema

    schema_file = REPO / "schemas" / "regions.schema.json"
    assert schema_file.read_text(encoding="utf-8") == dumps(regions_json_schema())
    jsonschema.validate(_example_document(), regions_json_schema())


def test_bad_tier_names_feature_field_expected_and_found(tmp_path: Path) -> None:
    """A wrong tier in the third feature is reported as features[2].properties.tier."""
    document = _example_document()
    document["features"][2]["properties"]["tier"] = "secret"
    error = _error(tmp_path, document)
    assert error.field == "features[2].properties.tier"
    assert error.found == "secret"
    assert "public-generalized" in str(error.expected)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("labels", ["tk_made_up"], "features[0].properties.labels"),
        ("notices", ["tk_secret_sacred"], "features[0].properties.notices"),
        ("consent", {"kfm-climate-downscaling": "yes"}, "features[0].properties.consent"),
        ("region_id", "Has Spaces", "features[0].properties.region_id"),
    ],
)
def test_bad_property_is_named(tmp_path: Path, key: str, value: Any, field: str) -> None:
    """Unknown labels, notices in the labels slot, bad consent states and ids are refused by name."""
    document = _example_document()
    document["features"][0]["properties"][key] = value
    error = _error(tmp_path, document)
    assert error.field is not None and error.field.startswith(field)


def test_duplicate_region_id_is_refused(tmp_path: Path) -> None:
    """Two features with one region_id are refused, naming the second one."""
    document = _example_document()
    document["features"].append(copy.deepcopy(document["features"][0]))
    error = _error(tmp_path, document)
    assert error.field == "features[4].properties.region_id"


def test_swapped_coordinates_are_refused_with_a_hint(tmp_path: Path) -> None:
    """[lat, lon] positions (latitude out of range) are refused with the GeoJSON-order hint."""
    document = _example_document()
    ring = document["features"][1]["geometry"]["coordinates"][0]
    document["features"][1]["geometry"]["coordinates"][0] = [[lat, lon] for lon, lat in ring]
    error = _error(tmp_path, document)
    assert error.field == "features[1].geometry.coordinates"
    assert error.hint is not None and "longitude, latitude" in error.hint


def test_self_intersecting_polygon_is_refused(tmp_path: Path) -> None:
    """A bow-tie polygon is refused as invalid."""
    document = _example_document()
    bowtie = [[-100, 40], [-98, 42], [-98, 40], [-100, 42], [-100, 40]]
    document["features"][0]["geometry"]["coordinates"] = [bowtie]
    error = _error(tmp_path, document)
    assert "invalid polygon" in error.message


def test_empty_collection_and_wrong_geometry_type_are_refused(tmp_path: Path) -> None:
    """No features, or a Point region, is an error rather than an empty screen."""
    assert _error(tmp_path, {"type": "FeatureCollection", "features": []}).field == "features"
    document = _example_document()
    document["features"][0]["geometry"] = {"type": "Point", "coordinates": [-100, 40]}
    assert _error(tmp_path, document).field == "features[0].geometry"


def test_not_json_is_refused(tmp_path: Path) -> None:
    """A file that is not JSON names the file and says a FeatureCollection was expected."""
    path = tmp_path / "regions.geojson"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(SovereigntyError, match="FeatureCollection"):
        load_regions(path)


def test_geopackage_with_json_columns_in_another_crs_loads(tmp_path: Path) -> None:
    """A GeoPackage in Web Mercator with JSON text columns gives the same regions as the GeoJSON."""
    import geopandas

    expected = load_regions(EXAMPLE)
    frame = geopandas.GeoDataFrame(
        {
            "region_id": [r.region_id for r in expected],
            "nation": [r.properties.nation for r in expected],
            "steward_id": [r.properties.steward_id for r in expected],
            "tier": [r.tier for r in expected],
            "labels": [json.dumps(list(r.properties.labels)) for r in expected],
            "notices": [json.dumps(list(r.properties.notices)) for r in expected],
            "consent": [json.dumps(r.properties.consent) for r in expected],
        },
        geometry=[r.geometry for r in expected],
        crs="EPSG:4326",
    ).to_crs(3857)
    path = tmp_path / "regions.gpkg"
    frame.to_file(path, driver="GPKG")
    loaded = load_regions(path)
    for want, got in zip(expected, loaded, strict=True):
        assert got.properties.model_copy(update={"example": True, "note": None}) == (
            want.properties.model_copy(update={"note": None})
        )
        assert shapely.equals_exact(got.geometry, want.geometry, tolerance=1e-6)


def test_every_recognised_label_has_a_kind_and_only_secret_sacred_withholds() -> None:
    """The label table knows TK/BC labels and notices; only tk_secret_sacred withholds."""
    assert {label.kind for label in LOCAL_CONTEXTS.values()} == {"tk_label", "bc_label", "notice"}
    assert [k for k, v in LOCAL_CONTEXTS.items() if v.withholds] == ["tk_secret_sacred"]


def test_consent_other_than_granted_withholds_for_that_family_only() -> None:
    """A region publishes for a family with consent granted and withholds for pending/denied."""
    regions = regions_from_geojson(_example_document())
    cedar = regions.get("example-cedar-lakes")
    assert cedar.withheld_reason("kfm-climate-downscaling") is None
    assert cedar.withheld_reason("kfm-hazard-scoring") == "consent withdrawn for kfm-hazard-scoring"
    assert "not recorded" in str(cedar.withheld_reason("unknown-family"))
