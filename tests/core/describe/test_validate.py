"""Offline validation: the packaged standard schemas cover what the items declare, nothing is
ever fetched, and every problem names its schema, field, expectation and finding."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pystac
import pytest

from core.candidate.load import load_candidate
from core.describe import Description, describe_candidate
from core.describe.validate import (
    PROV_JSON_SCHEMA_FILE,
    load_standards,
    schema_problems,
    stac_problems,
)
from core.errors import DescribeError
from core.resources import STANDARDS_PATH

UNKNOWN_EXTENSION = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"


@pytest.fixture(autouse=True)
def no_fetching(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt by pystac to read a schema from a URL fails the test."""

    def refuse(self: Any, source: Any, *args: Any, **kwargs: Any) -> str:
        raise AssertionError(f"fetched {source}")

    monkeypatch.setattr(pystac.stac_io.DefaultStacIO, "read_text", refuse)


@pytest.fixture(scope="module")
def description(reference_candidate_dir: Path) -> Description:
    """The reference candidate described (item and lineage, nothing written)."""
    return describe_candidate(load_candidate(reference_candidate_dir))


def _standards_copy(tmp_path: Path) -> Path:
    target = tmp_path / "standards"
    shutil.copytree(STANDARDS_PATH, target)
    return target


def test_packaged_standards_cover_every_extension_the_item_declares(
    description: Description,
) -> None:
    """Each stac_extensions URL of the item (but kfm:, generated) and MLM's $refs are packaged."""
    standards = load_standards()
    declared = [u for u in description.item["stac_extensions"] if "kfm.example" not in u]
    assert len(declared) == 5 and all(u in standards.stac for u in declared)
    mlm = json.dumps(standards.stac["https://stac-extensions.github.io/mlm/v1.4.0/schema.json"])
    for ref in ("classification/v1.1.0", "processing/v1.1.0", "raster/v1.1.0"):
        assert ref in mlm
        assert f"https://stac-extensions.github.io/{ref}/schema.json" in standards.stac
    assert standards.prov_json["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert stac_problems(description.item) == []


def test_every_packaged_folder_keeps_its_licence_and_source() -> None:
    """Each copied folder has its SOURCE.txt and licence; each extension its own LICENSE."""
    for folder in ("prov", "stac-core", "stac-mlm"):
        assert (STANDARDS_PATH / folder / "SOURCE.txt").is_file()
        assert list((STANDARDS_PATH / folder).glob("LICENSE*")), folder
    extensions = STANDARDS_PATH / "stac-core" / "stac-extensions.github.io"
    for ext in extensions.iterdir():
        assert (ext / "LICENSE").is_file(), ext.name
    assert not list(STANDARDS_PATH.rglob("*.py"))


def test_an_unknown_extension_is_reported_not_fetched(description: Description) -> None:
    """An extension URL with no packaged schema is a problem naming it; nothing is downloaded."""
    item = copy.deepcopy(description.item)
    item["stac_extensions"].append(UNKNOWN_EXTENSION)
    (problem,) = stac_problems(item)
    assert problem.schema == UNKNOWN_EXTENSION and problem.found == UNKNOWN_EXTENSION
    assert problem.field == f"$.stac_extensions[{len(item['stac_extensions']) - 1}]"
    assert "packaged standards" in problem.expected and "nothing is fetched" in problem.message


def test_a_stac_version_without_packaged_core_schema_is_reported(
    description: Description,
) -> None:
    """STAC 1.0.0 has no packaged core schema (pystac ships 1.1.0): reported, not fetched."""
    item = copy.deepcopy(description.item)
    item["stac_version"] = "1.0.0"
    core = [p for p in stac_problems(item) if p.field == "$.stac_version"]
    assert [p.found for p in core] == ["1.0.0"] and "1.1.0" in core[0].expected


def test_an_unresolvable_ref_is_reported(description: Description, tmp_path: Path) -> None:
    """A schema whose $ref points at a schema not in the folder is reported, not fetched."""
    standards = _standards_copy(tmp_path)
    url = "https://example.org/ext/v1.0.0/schema.json"
    path = standards / "stac-core" / "example.org" / "ext" / "v1.0.0" / "schema.json"
    path.parent.mkdir(parents=True)
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": url,
        "properties": {"properties": {"$ref": "https://example.org/other.json#/definitions/x"}},
    }
    path.write_text(json.dumps(schema), encoding="utf-8")
    item = copy.deepcopy(description.item)
    item["stac_extensions"].append(url)
    (problem,) = stac_problems(item, standards)
    assert problem.schema == url and problem.field == "$ref"
    assert "https://example.org/other.json" in problem.found


def test_mlm_violations_name_the_field_and_the_closest_branch(description: Description) -> None:
    """'cpu' fails MLM's accelerator oneOf at its own path, pointing at the enum branch."""
    item = copy.deepcopy(description.item)
    item["properties"]["mlm:accelerator"] = "cpu"
    (problem,) = stac_problems(item)
    assert problem.schema == "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
    assert problem.field == "$.properties['mlm:accelerator']" and problem.found == "cpu"
    assert problem.expected.startswith("oneOf") and "is not one of" in problem.message


def test_an_override_folder_replaces_the_packaged_schemas(
    description: Description, tmp_path: Path
) -> None:
    """A folder laid out like the packaged one is used instead of it, MLM and all."""
    standards = _standards_copy(tmp_path)
    assert stac_problems(description.item, standards) == []
    stricter = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://stac-extensions.github.io/mlm/v1.4.0/schema.json",
        "properties": {"properties": {"required": ["mlm:not_written"]}},
    }
    mlm = standards / "stac-mlm" / "json-schema" / "v1.4.0" / "schema.json"
    mlm.write_text(json.dumps(stricter), encoding="utf-8")
    problems = stac_problems(description.item, standards)
    assert [p.field for p in problems] == ["$.properties"]
    assert "mlm:not_written" in problems[0].message


@pytest.mark.parametrize(
    ("damage", "file_end", "found"),
    [
        (lambda d: shutil.rmtree(d), "standards", "missing"),
        (lambda d: (d / PROV_JSON_SCHEMA_FILE).unlink(), PROV_JSON_SCHEMA_FILE, "missing"),
        (lambda d: [shutil.rmtree(d / f) for f in ("stac-core", "stac-mlm")], "standards", "none"),
    ],
)
def test_an_unusable_override_folder_is_a_clear_error(
    tmp_path: Path, damage: Any, file_end: str, found: str
) -> None:
    """A missing folder, a missing PROV-JSON schema or no STAC schema raise a DescribeError
    naming the file and what was found."""
    standards = _standards_copy(tmp_path)
    damage(standards)
    with pytest.raises(DescribeError) as raised:
        load_standards(standards)
    assert raised.value.file is not None and raised.value.file.endswith(file_end)
    assert raised.value.found == found


def test_an_unreadable_schema_names_its_file(tmp_path: Path) -> None:
    """A schema file that is not JSON raises a DescribeError naming that file."""
    standards = _standards_copy(tmp_path)
    broken = standards / "stac-core" / "stac-extensions.github.io" / "file" / "v2.1.0"
    (broken / "schema.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DescribeError) as raised:
        load_standards(standards)
    assert raised.value.file == str(broken / "schema.json")


def test_schema_problems_name_field_expected_and_found() -> None:
    """A generic schema violation names the JSON path, the keyword and the value found."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    (problem,) = schema_problems({"a": "x"}, schema, schema_name="demo")
    assert (problem.schema, problem.field, problem.found) == ("demo", "$.a", "x")
    assert problem.expected == "type: integer"
    assert schema_problems({"a": 1}, schema, schema_name="demo") == []


def test_describe_findings_include_the_schema_checks(
    description: Description, reference_candidate_dir: Path
) -> None:
    """`kfm describe`'s findings report a STAC schema violation of the item it built."""
    item = copy.deepcopy(description.item)
    item["properties"]["mlm:framework_version"] = "1.23"
    broken = dataclasses.replace(description, item=item)
    findings = [f for f in broken.findings([reference_candidate_dir]) if f.check == "stac-schema"]
    assert [f.subject for f in findings] == [
        "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
    ]
    assert "mlm:framework_version" in findings[0].message
