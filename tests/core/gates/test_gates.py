"""The gate engine on the reference candidate: it passes, and each gate can fail on its own."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from core.candidate.load import load_candidate
from core.cli import app
from core.errors import KfmError
from core.gates import GATES, GateContext, Measurement, build_gates, run_gates, write_report
from core.gates.skill import AccuracyGate
from core.policy import DEFAULT_POLICY_PATH, Policy, load_policy, policy_from_dict


def policy_with(changes: dict[str, dict[str, Any]]) -> Policy:
    raw = tomllib.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    for gate, table in changes.items():
        raw["gates"][gate].update(table)
    return policy_from_dict(raw)


def edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def only_failing(report: Any) -> dict[str, str]:
    return {r.id: r.status for r in report.results if not r.passed}


@pytest.fixture(scope="module")
def reference_report(reference_candidate_dir: Path) -> Any:
    return run_gates(load_candidate(reference_candidate_dir), load_policy())


def test_reference_candidate_passes_every_gate(reference_report: Any) -> None:
    """With the default policy all nine gates pass and promotion is allowed."""
    assert [r.id for r in reference_report.results] == list(GATES)
    assert {r.status for r in reference_report.results} == {"pass"}
    assert reference_report.passed and reference_report.to_dict()["decision"] == "promotable"


def test_accuracy_matches_the_training_summary(
    reference_report: Any, reference_candidate_dir: Path
) -> None:
    """The chunked recomputation gives the RMSE the reference build recorded, and beats the baseline."""
    summary = json.loads((reference_candidate_dir / "model_summary.json").read_text())["metrics"][
        "validation"
    ]
    accuracy = reference_report.result("accuracy")
    assert accuracy.measured["rmse"] == pytest.approx(summary["rmse"], abs=1e-5)
    assert accuracy.evidence["baseline_rmse"] == pytest.approx(summary["baseline_rmse"], abs=1e-5)
    assert accuracy.measured["skill"] > 0.1


def test_real_finding_tails_are_worse_than_the_mean(reference_report: Any) -> None:
    """The reference model's tail quantiles are far more biased than its mean, and it
    under-produces warm extremes (a tree ensemble cannot extrapolate): shown in the evidence."""
    extremes = reference_report.result("extremes")
    mean_bias = abs(extremes.evidence["mean_bias"])
    assert extremes.measured["q01_abs_bias"] > 10 * mean_bias
    assert extremes.measured["upper_exceedance_ratio"] < 0.8
    assert any("under-produces warm extremes" in n for n in extremes.notes)
    assert any("tails are worse than the mean" in n for n in extremes.notes)


def test_gates_json_is_deterministic_and_reads_back(
    reference_candidate_dir: Path, tmp_path: Path
) -> None:
    """Two runs write byte-identical gates.json; it reads back with every gate and its checks."""
    candidate = load_candidate(reference_candidate_dir)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_report(run_gates(candidate, load_policy()), a)
    write_report(run_gates(candidate, load_policy()), b)
    assert a.read_bytes() == b.read_bytes()
    data = json.loads(a.read_text())
    assert data["passed"] is True and data["blocking_gates"] == []
    assert [g["id"] for g in data["gates"]] == list(GATES)
    assert all(g["checks"] and all(c["passed"] for c in g["checks"]) for g in data["gates"])


def test_chunking_does_not_change_the_measurements(
    reference_candidate_dir: Path, reference_report: Any
) -> None:
    """One time step per chunk gives the same measured values as a single chunk."""
    chunked = run_gates(load_candidate(reference_candidate_dir), load_policy(), chunk_times=1)
    assert chunked.result("accuracy").evidence["n_chunks"] == 4
    for whole, parts in zip(reference_report.results, chunked.results, strict=True):
        for key, value in whole.measured.items():
            assert parts.measured[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (whole.id, key)


# --------------------------------------------------------------------------- one gate fails
@pytest.mark.parametrize(
    ("gate", "change", "message"),
    [
        ("accuracy", {"skill_min": 0.5}, "skill = 0.16"),
        ("spatial_pattern", {"pattern_correlation_min": 0.999}, "pattern_correlation = 0.997"),
        ("extremes", {"upper_exceedance_ratio_min": 0.5}, "upper_exceedance_ratio = 0.48"),
        ("impact", {"heat_count_rel_bias_max": 0.1}, "heat_count_rel_bias = 0.14"),
        ("drift", {"ks_statistic_max": 0.01}, "ks_statistic = 0.021"),
        ("xai", {"additivity_error_max": 1e-6}, "additivity_error = 2.8"),
        ("telemetry", {"power_per_core_w_max": 10.0}, "power_per_core_w = 22.5"),
    ],
)
def test_a_stricter_policy_fails_exactly_that_gate(
    reference_candidate_dir: Path, gate: str, change: dict[str, Any], message: str
) -> None:
    """Tightening one gate's threshold fails that gate only, naming measured value and threshold."""
    report = run_gates(load_candidate(reference_candidate_dir), policy_with({gate: change}))
    assert only_failing(report) == {gate: "fail"}
    (failure,) = report.result(gate).failures
    assert failure.startswith(message) and next(iter(change)) in failure
    assert not report.passed


def test_misreported_metrics_fail_accuracy(candidate: Path) -> None:
    """A summary claiming a better RMSE than the data give fails the accuracy gate only."""
    edit_json(
        candidate / "model_summary.json",
        lambda d: d["metrics"]["validation"].__setitem__("rmse", 0.5),
    )
    report = run_gates(load_candidate(candidate), load_policy())
    assert only_failing(report) == {"accuracy": "fail"}
    assert "reported_rmse_error = 0.72" in report.result("accuracy").failures[0]


def test_shifted_reference_data_fails_drift(candidate: Path) -> None:
    """A training reference 10 K warmer than the validation inputs fails the drift gate only."""
    path = candidate / "data" / "reference.nc"
    with xr.open_dataset(path) as ds:
        shifted = ds.load()
    shifted["t_coarse"] = shifted["t_coarse"] + np.float32(10.0)
    path.unlink()
    shifted.to_netcdf(path)
    report = run_gates(load_candidate(candidate), load_policy())
    assert only_failing(report) == {"drift": "fail"}
    drift = report.result("drift")
    assert drift.evidence["worst_feature"]["psi"] == "t_coarse"
    assert drift.measured["psi"] > 0.25


def test_secret_sacred_label_blocks_public_release(candidate: Path) -> None:
    """A TK Secret / Sacred label on a publicly scoped candidate fails cultural safety only."""
    edit_json(
        candidate / "model_metadata.json",
        lambda d: d["care"].update(
            labels=["tk_secret_sacred"], steward_contacts=["steward@example.org"]
        ),
    )
    report = run_gates(load_candidate(candidate), load_policy())
    assert only_failing(report) == {"cultural_safety": "fail"}
    assert report.result("cultural_safety").failures == [
        "secret_sacred_public = 1 (threshold secret_sacred_public_max = 0)"
    ]


def test_unrecognised_label_and_missing_care_fields_fail_cultural_safety(candidate: Path) -> None:
    """An unknown label id and an empty CARE field are both named."""
    edit_json(
        candidate / "model_metadata.json",
        lambda d: d["care"].update(labels=["tk_made_up"], ethics=""),
    )
    result = run_gates(load_candidate(candidate), policy_with({})).result("cultural_safety")
    assert result.status == "fail"
    assert result.evidence["unrecognised_labels"] == ["tk_made_up"]
    assert result.evidence["missing_care_fields"] == ["ethics"]


def test_sovereignty_without_regions_follows_the_policy(reference_candidate_dir: Path) -> None:
    """Without regions the gate passes with a note only when the policy allows it; else it blocks."""
    candidate = load_candidate(reference_candidate_dir)
    allowed = run_gates(candidate, load_policy()).result("sovereignty")
    assert allowed.passed and allowed.measured["regions_given"] is False
    assert "no regions given" in allowed.notes[0]
    report = run_gates(candidate, policy_with({"sovereignty": {"allow_no_regions": False}}))
    assert only_failing(report) == {"sovereignty": "error"}
    assert "no regions file was given" in report.result("sovereignty").failures[0]


def test_tampered_xai_predictions_fail_xai(candidate: Path) -> None:
    """Explained predictions that are not the model's break additivity and fail the xai gate only."""

    def shift(d: dict[str, Any]) -> None:
        for sample in d["samples"]:
            sample["prediction"] += 0.5

    edit_json(candidate / "xai" / "shap_summary.json", shift)
    report = run_gates(load_candidate(candidate), load_policy())
    assert only_failing(report) == {"xai": "fail"}
    failures = report.result("xai").failures
    assert any(f.startswith("additivity_error = 0.5") for f in failures)
    assert any(f.startswith("prediction_error = 0.5") for f in failures)


def test_unstable_attributions_fail_xai(candidate: Path) -> None:
    """Reversed feature importance between seeds fails the seed-stability check."""

    def reverse(d: dict[str, Any]) -> None:
        seeds = sorted(d["mean_abs_attribution_by_seed"])
        table = d["mean_abs_attribution_by_seed"][seeds[1]]
        names = sorted(table, key=table.get)
        values = sorted(table.values(), reverse=True)
        d["mean_abs_attribution_by_seed"][seeds[1]] = dict(zip(names, values, strict=True))

    edit_json(candidate / "xai" / "shap_summary.json", reverse)
    result = run_gates(load_candidate(candidate), load_policy()).result("xai")
    assert result.failures == [
        "seed_rank_correlation = -1 (threshold seed_rank_correlation_min = 0.8)"
    ]


def test_implausible_emissions_fail_telemetry(candidate: Path) -> None:
    """Emissions that are not energy x grid intensity fail the telemetry gate only."""
    edit_json(
        candidate / "telemetry" / "training.json",
        lambda d: d.update(emissions_kg_co2e=d["emissions_kg_co2e"] * 2),
    )
    report = run_gates(load_candidate(candidate), load_policy())
    assert only_failing(report) == {"telemetry": "fail"}
    assert report.result("telemetry").failures[0].startswith("emissions_rel_error = 1 ")


def test_missing_baseline_is_an_error_that_blocks(candidate: Path) -> None:
    """A baseline variable absent from the data makes the data gates error, which blocks promotion."""
    edit_json(candidate / "model_metadata.json", lambda d: d.update(baseline_variable="t_missing"))
    report = run_gates(load_candidate(candidate), load_policy())
    assert only_failing(report) == {
        g: "error" for g in ("accuracy", "spatial_pattern", "extremes", "impact")
    }
    assert report.result("accuracy").error["field"] == "t_missing"
    assert not report.passed


def test_a_crashing_gate_is_reported_as_error(
    reference_candidate_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception inside a gate becomes status error with its message, not a crash."""

    def boom(self: AccuracyGate, ctx: GateContext) -> Measurement:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(AccuracyGate, "measure", boom)
    report = run_gates(load_candidate(reference_candidate_dir), load_policy())
    result = report.result("accuracy")
    assert result.status == "error" and result.error["error"] == "ZeroDivisionError"
    assert report.to_dict()["blocking_gates"] == ["accuracy"]


def test_single_gate_policy_evaluates_only_that_gate(reference_candidate_dir: Path) -> None:
    """A policy naming one gate runs exactly that gate."""
    raw = tomllib.loads(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["gates"] = {"telemetry": raw["gates"]["telemetry"]}
    report = run_gates(load_candidate(reference_candidate_dir), policy_from_dict(raw))
    assert [r.id for r in report.results] == ["telemetry"] and report.passed
    assert [g.id for g in build_gates(policy_from_dict(raw))] == ["telemetry"]


# --------------------------------------------------------------------------- CLI
def test_cli_passes_and_writes_gates_json(reference_candidate_dir: Path, tmp_path: Path) -> None:
    """`kfm gates run` exits 0 on the reference and writes the report to --out."""
    out = tmp_path / "gates.json"
    result = CliRunner().invoke(
        app, ["gates", "run", str(reference_candidate_dir), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "all 9 gates pass" in result.output
    assert json.loads(out.read_text())["decision"] == "promotable"


def test_cli_blocks_and_names_the_failing_gate(
    reference_candidate_dir: Path, tmp_path: Path
) -> None:
    """With a stricter policy the CLI exits 1 and names the gate, measured value and threshold."""
    policy = tmp_path / "strict.toml"
    policy.write_text(
        DEFAULT_POLICY_PATH.read_text(encoding="utf-8").replace(
            "rmse_max = 1.5 ", "rmse_max = 1.0 "
        ),
        encoding="utf-8",
    )
    out = tmp_path / "gates.json"
    result = CliRunner().invoke(
        app,
        [
            "gates",
            "run",
            str(reference_candidate_dir),
            "--policy",
            str(policy),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["blocking_gates"] == ["accuracy"]
    assert data["gates"][0]["failures"] == ["rmse = 1.22109 (threshold rmse_max = 1)"]


def test_cli_refuses_a_policy_with_an_unknown_gate(
    reference_candidate_dir: Path, tmp_path: Path
) -> None:
    """An unknown gate id in the policy file is an error (never a pass)."""
    policy = tmp_path / "bad.toml"
    policy.write_text(
        DEFAULT_POLICY_PATH.read_text(encoding="utf-8") + "\n[gates.vibes]\nok_min = 1\n",
        encoding="utf-8",
    )
    with pytest.raises(KfmError, match="unknown gate id"):
        CliRunner().invoke(
            app,
            ["gates", "run", str(reference_candidate_dir), "--policy", str(policy)],
            catch_exceptions=False,
        )


# --------------------------------------------------------------------------- sovereignty with regions
REGIONS = DEFAULT_POLICY_PATH.parent / "regions.geojson"


def test_example_regions_with_consent_pass_sovereignty(reference_candidate_dir: Path) -> None:
    """The example stewards granted consent to the downscaling family: touched, no conflict."""
    from core.sovereignty.regions import load_regions

    result = run_gates(
        load_candidate(reference_candidate_dir), load_policy(), regions=load_regions(REGIONS)
    ).result("sovereignty")
    assert result.passed and result.measured["regions_given"] is True
    assert len(result.evidence["regions_touched"]) >= 1


def test_footprint_over_a_region_without_consent_fails_sovereignty(candidate: Path) -> None:
    """A model family no steward consented to fails the sovereignty gate only, naming the regions."""
    from core.sovereignty.regions import load_regions

    edit_json(
        candidate / "model_metadata.json", lambda d: d.update(model_family="kfm-hazard-scoring")
    )
    report = run_gates(load_candidate(candidate), load_policy(), regions=load_regions(REGIONS))
    assert only_failing(report) == {"sovereignty": "fail"}
    result = report.result("sovereignty")
    touched = result.evidence["regions_touched"]
    assert result.failures == [f"conflicts = {len(touched)} (threshold conflicts_max = 0)"]
    assert {c["region_id"] for c in result.evidence["conflicts"]} == set(touched)
