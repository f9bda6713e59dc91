"""kfm ci: every check passes on the reference candidate and fails, with its message, on a
candidate broken in exactly that respect; JUnit XML parses and counts the failures."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pytest

from core.candidate.load import load_candidate
from core.ci import CHECK_TITLES, CiOptions, CiReport, run_ci_candidate
from core.ci.boundary import boundary_check
from core.ci.checks import (
    compare_builds,
    deployment_hash_check,
    gate_check,
    inference_check,
    metadata_schema_check,
    stac_item_check,
    tree_digests,
)
from core.ci.run import DEFAULT_REGIONS_PATH
from core.describe import KFM_EXTENSION_URI, MLM_EXTENSION_URI, describe_candidate
from core.policy import load_policy
from core.resources import STANDARDS_PATH
from core.sovereignty.regions import load_regions


def _edit_json(path: Path, edit: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


@pytest.fixture(scope="module")
def reference_report(reference_candidate_dir: Path) -> CiReport:
    """One full CI run on the reference candidate, shared by the module."""
    return run_ci_candidate(reference_candidate_dir)


@pytest.fixture(scope="module")
def bad_telemetry_report(
    reference_candidate_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> CiReport:
    """One full CI run on a candidate whose telemetry claims an implausible PUE."""
    root = tmp_path_factory.mktemp("bad-telemetry") / "candidate"
    shutil.copytree(reference_candidate_dir, root)
    for path in sorted((root / "telemetry").glob("*.json")):
        _edit_json(path, lambda d: d.update(pue=5.0))
    return run_ci_candidate(root)


@pytest.fixture(scope="module")
def gate_inputs() -> tuple[Any, Any]:
    """The repository's policy and example regions."""
    return load_policy(), load_regions(DEFAULT_REGIONS_PATH)


def test_reference_candidate_passes_every_check(reference_report: CiReport) -> None:
    """The reference candidate passes all nine checks, each with what it measured."""
    assert [c.id for c in reference_report.checks] == list(CHECK_TITLES)
    assert reference_report.passed, [str(f) for c in reference_report.failed for f in c.failures]
    for check in reference_report.checks:
        assert check.measured and check.measured != "nothing"
    assert "built with the describe stage" in reference_report.check("stac-item").notes[0]
    assert (
        reference_report.check("deployment-hash").details["first"]
        == (reference_report.check("deployment-hash").details["second"])
    )
    assert "tolerance" in reference_report.check("inference").measured


def test_junit_of_a_passing_run_parses(reference_report: CiReport) -> None:
    """JUnit XML has one testcase per check and no failure element when all pass."""
    suite = ET.fromstring(reference_report.junit_xml())
    assert suite.get("tests") == "9" and suite.get("failures") == "0"
    assert [c.get("name") for c in suite.iter("testcase")] == list(CHECK_TITLES)
    assert not list(suite.iter("failure"))


def test_bad_telemetry_fails_only_the_telemetry_check(bad_telemetry_report: CiReport) -> None:
    """An implausible PUE fails the telemetry check alone, naming the metric and threshold."""
    assert [c.id for c in bad_telemetry_report.failed] == ["telemetry"]
    (failure,) = bad_telemetry_report.check("telemetry").failures
    assert failure.file == "telemetry/" and failure.field == "pue"
    assert "gates.telemetry.pue_max" in failure.expected and failure.found.startswith("5")


def test_junit_counts_the_failures(bad_telemetry_report: CiReport) -> None:
    """JUnit XML of a failing run: one failure, on the telemetry testcase, naming file and field."""
    suite = ET.fromstring(bad_telemetry_report.junit_xml())
    assert suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["telemetry"]
    message = failed[0].find("failure").get("message")  # type: ignore[union-attr]
    assert "telemetry/" in message and "pue" in message and "expected <= 3" in message


def test_json_report_round_trips(bad_telemetry_report: CiReport) -> None:
    """The --json report is plain JSON with the failed check ids and each failure's fields."""
    data = json.loads(json.dumps(bad_telemetry_report.to_dict()))
    assert data["passed"] is False and data["failed"] == ["telemetry"]
    telemetry = next(c for c in data["checks"] if c["id"] == "telemetry")
    assert set(telemetry["failures"][0]) == {"file", "field", "expected", "found", "message"}


def test_metadata_schema_check_names_file_and_field(candidate: Path) -> None:
    """A licence of the wrong type fails the schema check at model_metadata.json $.license."""
    _edit_json(candidate / "model_metadata.json", lambda d: d.update(license=42))
    check = metadata_schema_check(candidate)
    assert not check.passed
    fields = {(f.file, f.field) for f in check.failures}
    assert ("model_metadata.json", "$.license") in fields


def test_metadata_schema_check_reads_prov_json_schema(candidate: Path) -> None:
    """A PROV-JSON generation without its entity fails against the packaged W3C PROV-JSON
    schema, with no standards folder given."""
    path = candidate / "provenance" / "training.prov.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    relation = sorted(data["wasGeneratedBy"])[0]
    del data["wasGeneratedBy"][relation]["prov:entity"]
    path.write_text(json.dumps(data), encoding="utf-8")
    check = metadata_schema_check(candidate)
    failures = [f for f in check.failures if f.file == "provenance/training.prov.json"]
    assert failures and failures[0].message.startswith("W3C PROV-JSON schema: ")
    assert failures[0].field == f"$.wasGeneratedBy['{relation}']"
    assert "prov:entity" in failures[0].message


def test_metadata_schema_check_fails_without_a_prov_json_schema(
    reference_candidate_dir: Path, tmp_path: Path
) -> None:
    """An override folder without the PROV-JSON schema fails the check naming --standards; the
    PROV-JSON check is never skipped."""
    standards = tmp_path / "standards"
    shutil.copytree(STANDARDS_PATH, standards)
    (standards / "prov" / "prov-json.schema.json").unlink()
    check = metadata_schema_check(reference_candidate_dir, standards)
    assert [f.field for f in check.failures] == ["--standards"]
    assert check.failures[0].file.endswith("prov/prov-json.schema.json")
    assert check.failures[0].found == "missing"
    assert metadata_schema_check(reference_candidate_dir).passed


@pytest.fixture(scope="module")
def described_item(
    reference_candidate_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    """The reference item written next to the files its assets name (registry layout)."""
    out = tmp_path_factory.mktemp("item")
    candidate = load_candidate(reference_candidate_dir)
    description = describe_candidate(candidate)
    description.write(out)
    shutil.copyfile(candidate.onnx_path, out / "model.onnx")
    for folder in ("xai", "telemetry"):
        shutil.copytree(reference_candidate_dir / folder, out / folder)
    return description.item, out


def test_stac_check_refuses_an_invalid_mlm_field(
    described_item: tuple[dict[str, Any], Path],
) -> None:
    """mlm:accelerator 'cpu' (not an MLM value) fails the STAC check against the MLM schema."""
    item, root = described_item
    assert stac_item_check(item, item_file="x.json", roots=[root]).passed
    broken = json.loads(json.dumps(item))
    broken["properties"]["mlm:accelerator"] = "cpu"
    check = stac_item_check(broken, item_file="x.json", roots=[root])
    assert not check.passed
    failure = next(f for f in check.failures if "mlm" in f.expected)
    assert failure.file == "x.json" and failure.field == "$.properties['mlm:accelerator']"


def test_stac_check_rehashes_assets(
    described_item: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """A changed asset file fails the STAC check naming the asset and its checksum."""
    item, root = described_item
    copy = tmp_path / "layout"
    shutil.copytree(root, copy)
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"\0")
    check = stac_item_check(item, item_file="x.json", roots=[copy])
    assert any(f.field.startswith("assets.") and "checksum" in f.found for f in check.failures)


def test_stac_check_refuses_an_unknown_kfm_field(
    described_item: tuple[dict[str, Any], Path],
) -> None:
    """An unknown kfm: field fails against the project's extension schema, generated in memory."""
    item, root = described_item
    broken = json.loads(json.dumps(item))
    broken["properties"]["kfm:bogus"] = 1
    check = stac_item_check(broken, item_file="x.json", roots=[root])
    assert [f.expected for f in check.failures] == [f"valid against {KFM_EXTENSION_URI}"]
    assert "kfm:bogus" in check.failures[0].found


def test_stac_check_with_a_standards_override(
    described_item: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """--standards replaces the packaged schemas: a folder without MLM fails naming the MLM URL,
    a missing folder fails naming --standards, and nothing is fetched instead."""
    item, root = described_item
    standards = tmp_path / "standards"
    shutil.copytree(STANDARDS_PATH, standards)
    assert stac_item_check(item, item_file="x.json", roots=[root], standards=standards).passed
    shutil.rmtree(standards / "stac-mlm")
    check = stac_item_check(item, item_file="x.json", roots=[root], standards=standards)
    (failure,) = check.failures
    assert failure.field.startswith("$.stac_extensions[")
    assert failure.expected == f"valid against {MLM_EXTENSION_URI}"
    assert str(standards) in check.measured
    missing = stac_item_check(
        item, item_file="x.json", roots=[root], standards=tmp_path / "no-standards"
    )
    assert [f.field for f in missing.failures] == ["--standards"]
    assert missing.failures[0].found == "missing"


def test_xai_check_fails_on_a_missing_attribution(
    candidate: Path, gate_inputs: tuple[Any, Any]
) -> None:
    """A feature without attributions for one seed fails the XAI check, naming the feature."""

    def drop(data: dict[str, Any]) -> None:
        seed = sorted(data["mean_abs_attribution_by_seed"])[0]
        table = data["mean_abs_attribution_by_seed"][seed]
        table.pop(sorted(table)[0])

    _edit_json(candidate / "xai" / "shap_summary.json", drop)
    policy, regions = gate_inputs
    check = gate_check(
        "xai",
        "XAI",
        ("xai",),
        load_candidate(candidate),
        policy,
        regions,
        files={"xai": "xai/shap_summary.json"},
    )
    assert [f.field for f in check.failures] == ["missing_attributions"]
    assert check.failures[0].file == "xai/shap_summary.json" and "seed" in check.failures[0].found


def test_fair_care_check_fails_on_missing_care_field(
    candidate: Path, gate_inputs: tuple[Any, Any]
) -> None:
    """An empty CARE 'ethics' field fails the FAIR+CARE check through the cultural safety gate."""
    _edit_json(candidate / "model_metadata.json", lambda d: d["care"].update(ethics=""))
    policy, regions = gate_inputs
    check = gate_check(
        "fair-care",
        "FAIR+CARE",
        ("cultural_safety", "sovereignty"),
        load_candidate(candidate),
        policy,
        regions,
        files={"cultural_safety": "model_metadata.json"},
    )
    assert [f.field for f in check.failures] == ["missing_care_fields"]
    assert "ethics" in check.failures[0].found


def _cell_feature(cell: str, count: int, region_id: str, tier: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": None,
        "properties": {
            "kind": "h3",
            "h3": cell,
            "resolution": h3.get_resolution(cell),
            "count": count,
            "region_id": region_id,
            "tier": tier,
        },
    }


def _boundary(features: list[dict[str, Any]], gate_inputs: tuple[Any, Any]) -> Any:
    policy, regions = gate_inputs
    return boundary_check(
        {"type": "FeatureCollection", "features": features},
        file="published.geojson",
        regions=regions,
        policy=policy.screening,
        model_family="kfm-climate-downscaling",
    )


def test_boundary_check_passes_a_safe_release(gate_inputs: tuple[Any, Any]) -> None:
    """A res-4 cell inside the restricted region with enough samples, and a native point far
    from every region, pass."""
    native = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-100.0, 30.0]},
        "properties": {"kind": "native", "count": 4},
    }
    check = _boundary(
        [
            _cell_feature(
                h3.latlng_to_cell(48.4, -91.0, 4), 20, "example-cedar-lakes", "restricted"
            ),
            native,
        ],
        gate_inputs,
    )
    assert check.passed, [str(f) for f in check.failures]


def test_boundary_check_refuses_a_cell_finer_than_its_tier(gate_inputs: tuple[Any, Any]) -> None:
    """A res-9 cell in the restricted region (res 4) fails, naming the tier."""
    check = _boundary(
        [_cell_feature(h3.latlng_to_cell(48.4, -91.0, 9), 20, "example-cedar-lakes", "restricted")],
        gate_inputs,
    )
    assert [f.message for f in check.failures] == ["cell finer than its tier"]
    assert "restricted" in check.failures[0].expected


def test_boundary_check_refuses_a_small_cell(gate_inputs: tuple[Any, Any]) -> None:
    """A cell with fewer samples than min_count fails, naming the count."""
    check = _boundary(
        [_cell_feature(h3.latlng_to_cell(48.4, -91.0, 4), 3, "example-cedar-lakes", "restricted")],
        gate_inputs,
    )
    assert [(f.field, f.found) for f in check.failures] == [("features[0].properties.count", "3")]


def test_boundary_check_refuses_withheld_land(gate_inputs: tuple[Any, Any]) -> None:
    """A cell over the withheld region fails (overlap and buffer), even if labelled elsewhere."""
    check = _boundary(
        [
            _cell_feature(
                h3.latlng_to_cell(36.5, -110.8, 4), 20, "example-cedar-lakes", "restricted"
            )
        ],
        gate_inputs,
    )
    messages = {f.message for f in check.failures}
    assert "cell in withheld land" in messages and "published next to withheld land" in messages


def test_boundary_check_refuses_native_values_in_a_region(gate_inputs: tuple[Any, Any]) -> None:
    """A native grid value inside a steward region fails, naming the region."""
    native = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-78.3, 35.5]},
        "properties": {"kind": "native", "count": 4},
    }
    check = _boundary([native], gate_inputs)
    assert [f.message for f in check.failures] == ["native value published inside a steward region"]
    assert "example-tidewater" in check.failures[0].found


def test_deployment_hash_check_names_the_differing_file(tmp_path: Path) -> None:
    """Two stagings that differ in one file fail the deployment-hash check naming that file."""
    first, second = tmp_path / "a", tmp_path / "b"
    for root, gates in ((first, "{}"), (second, '{"x": 1}')):
        root.mkdir()
        (root / "model.onnx").write_bytes(b"onnx")
        (root / "gates.json").write_text(gates)
        (root / "model.sig").write_text(str(root))  # excluded: signatures differ per signing
    check = deployment_hash_check(first, second)
    assert [f.file for f in check.failures] == ["gates.json"]
    (second / "gates.json").write_text("{}")
    assert deployment_hash_check(first, second).passed


def test_rebuild_comparison_names_the_differing_file(tmp_path: Path) -> None:
    """Builds that differ in one byte are reported file by file with both digests."""
    for name, text in (("a", "x"), ("b", "y")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "provenance.ttl").write_text(text)
        (tmp_path / name / "model.stac.json").write_text("{}")
    failures = compare_builds(
        tree_digests(tmp_path / "a"), tree_digests(tmp_path / "b"), prefix="describe/"
    )
    assert [f.file for f in failures] == ["describe/provenance.ttl"]


def test_inference_check_tolerance_and_repeat() -> None:
    """Thread-dependent outputs beyond the tolerance fail; a non-repeatable run fails."""
    base = np.linspace(250.0, 300.0, 50)
    shifted = inference_check(
        lambda t: base + (t - 1) * 1e-3, threads=(1, 2), tolerance=1e-4, units="K", file="m"
    )
    assert [f.field for f in shifted.failures] == ["outputs (2 threads)"]
    assert "1e-04" in shifted.failures[0].expected or "0.0001" in shifted.failures[0].expected
    calls = iter(range(10))
    flaky = inference_check(
        lambda t: base + next(calls), threads=(1,), tolerance=1.0, units="K", file="m"
    )
    assert [f.field for f in flaky.failures] == ["outputs (1 thread, run 2)"]
    assert inference_check(
        lambda t: base, threads=(1, 2, 4), tolerance=0.0, units="K", file="m"
    ).passed


@pytest.fixture(scope="module")
def deployed(reference_candidate_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The reference deployed once into a fresh workspace: (workspace, version)."""
    from core.pipeline import deploy_candidate
    from core.workspace import init_workspace

    ws = init_workspace(
        tmp_path_factory.mktemp("ci-version") / "ws", root_passphrase="r", pipeline_passphrase="p"
    )
    outcome = deploy_candidate(
        reference_candidate_dir,
        engine=ws.decision_engine("p"),
        policy=ws.policy(),
        regions_path=ws.regions_path,
        submitter="pipeline",
    )
    assert not outcome.blocked
    return ws, outcome.version


def test_ci_version_passes_every_check_on_a_deployed_version(deployed: Any) -> None:
    """`kfm ci --version` re-hashes, refetches and rebuilds a deployed version byte for byte."""
    from typer.testing import CliRunner

    from core.cli import app

    ws, version = deployed
    junit = ws.root / "ci.xml"
    args = ["ci", "--version", version, "--workspace", str(ws.root), "--json"]
    run = CliRunner().invoke(app, [*args, "--junit", str(junit)])
    assert run.exit_code == 0, run.output
    report = json.loads(run.output)
    assert [c["id"] for c in report["checks"]] == ["registry", *CHECK_TITLES]
    assert all(c["passed"] for c in report["checks"])
    assert ET.parse(junit).getroot().get("failures") == "0"


def test_ci_version_names_a_tampered_stored_file(deployed: Any) -> None:
    """A stored file changed after the push fails the registry check, which names it."""
    from core.ci.version import run_ci_version

    ws, version = deployed
    path = ws.path(ws.config.registry) / "climate" / "models" / version / "gates.json"
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b'"passed": true', b'"passed": false', 1))
        report = run_ci_version(
            ws.registry(),
            version,
            CiOptions(policy_path=ws.path(ws.config.policy), regions_path=ws.regions_path),
        )
    finally:
        path.write_bytes(original)
    failed = {c.id: c for c in report.failed}
    assert "registry" in failed and "deployment-hash" in failed
    assert any(f.file.endswith("/gates.json") for f in failed["registry"].failures)
    assert any("gates.json" in f.file for f in failed["deployment-hash"].failures)
