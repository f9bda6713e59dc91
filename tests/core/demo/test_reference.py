"""The reference candidate: real data, deterministic bytes, a model that beats its baseline."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

from core.candidate.load import load_candidate
from core.demo.reference import SEED, build_reference_candidate, source_data_path


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_rebuild_is_byte_identical(reference_candidate_dir: Path, tmp_path: Path) -> None:
    """Building the reference candidate twice gives byte-identical files."""
    again = build_reference_candidate(tmp_path / "again")
    assert _tree(again) == _tree(reference_candidate_dir)
    for rel in _tree(again):
        assert filecmp.cmp(again / rel, reference_candidate_dir / rel, shallow=False), rel


def test_seed_and_source_are_recorded(reference_candidate_dir: Path) -> None:
    """The seed and the real source file (with its sha256) are recorded in the metadata."""
    import hashlib

    meta = load_candidate(reference_candidate_dir).metadata
    assert meta.seed == SEED
    assert meta.hyperparameters["n_estimators"] == 120
    ref = meta.training_data[0]
    assert ref.sha256 == hashlib.sha256(source_data_path().read_bytes()).hexdigest()
    assert "hvsampledata" in ref.source


def test_model_beats_interpolation_baseline(reference_candidate_dir: Path) -> None:
    """On held-out times the model's RMSE is below the interpolated coarse field's."""
    m = load_candidate(reference_candidate_dir).summary.metrics["validation"]
    assert m.rmse < m.baseline_rmse
    assert m.n_samples == 4 * 25 * 53


def test_shap_attributions_explain_onnx_predictions(reference_candidate_dir: Path) -> None:
    """SHAP base value plus attributions reproduces the ONNX prediction of each sample."""
    xai = load_candidate(reference_candidate_dir).xai
    gaps = [abs(xai.base_value + sum(s.attributions) - s.prediction) for s in xai.samples]
    assert max(gaps) < 0.01  # float32 ONNX trees vs float64 SHAP
    assert xai.mean_abs_attribution["t_coarse"] == max(xai.mean_abs_attribution.values())


def test_telemetry_is_labelled_estimated(reference_candidate_dir: Path) -> None:
    """The training energy figure is a Green Algorithms estimate, labelled as such."""
    t = json.loads((reference_candidate_dir / "telemetry" / "training.json").read_text())
    assert t["method"] == "estimated"
    expected_kwh = t["duration_s"] / 3600 * (12.0 + 4.0 * 0.3725) * 1.67 / 1000
    assert abs(t["energy_kwh"] - expected_kwh) < 1e-9
    assert abs(t["emissions_kg_co2e"] - t["energy_kwh"] * 0.475) < 1e-9


def test_cli_reference_then_check(tmp_path: Path) -> None:
    """`kfm candidate reference OUT && kfm candidate check OUT` exits 0 in a fresh process."""
    out = tmp_path / "ref"
    build = subprocess.run(
        [sys.executable, "-m", "core.cli", "candidate", "reference", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    check = subprocess.run(
        [sys.executable, "-m", "core.cli", "candidate", "check", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_cli_prints_diagnostics_not_traceback() -> None:
    """An engine error reaches the user as one line with file, field, expected and found."""
    code = (
        "import core.cli as cli\n"
        "from core.errors import PolicyError\n"
        "def boom():\n"
        "    raise PolicyError('unknown gate', file='p.toml', field='gates.speed', expected='a gate id',"
        " found='speed')\n"
        "cli.app = boom\n"
        "cli.main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        "p.toml: field 'gates.speed': unknown gate (expected a gate id, found speed)"
        in result.stderr
    )
