"""The reference candidate: real data, deterministic bytes, a model that beats its baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.candidate.load import load_candidate
from core.demo.reference import SEED, sort_opset_imports, source_data_path
from core.describe import OUTPUT_FILES
from core.policy import DEFAULT_POLICY_PATH

REGIONS = DEFAULT_POLICY_PATH.parent / "regions.geojson"


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


BUILD_AND_STAGE = """
import sys
from pathlib import Path

from core.demo.reference import build_reference_candidate
from core.pipeline import main

out, policy, regions = (Path(a) for a in sys.argv[1:4])
build_reference_candidate(out / "candidate")
args = [str(out / "candidate"), str(out / "staging"), "--policy", str(policy)]
sys.exit(main([*args, "--regions", str(regions)]))
"""


@pytest.mark.slow
def test_build_and_staging_are_byte_identical_across_processes(tmp_path: Path) -> None:
    """Two processes (hash seeds 1 and 2) build, stage and describe the reference: same bytes."""
    procs = []
    for seed in (1, 2):
        env = {**os.environ, "PYTHONHASHSEED": str(seed), "OMP_NUM_THREADS": "1"}
        args = [str(tmp_path / f"seed{seed}"), str(DEFAULT_POLICY_PATH), str(REGIONS)]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", BUILD_AND_STAGE, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    for proc in procs:
        _, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stderr
    first, second = tmp_path / "seed1", tmp_path / "seed2"
    names = _tree(first)
    assert names == _tree(second)
    assert {"candidate/model.onnx", "staging/layout/model.onnx"} <= set(names)
    assert {f"staging/describe/{name}" for name in OUTPUT_FILES} <= set(names)
    differing = [rel for rel in names if (first / rel).read_bytes() != (second / rel).read_bytes()]
    assert differing == []


def test_opset_imports_are_saved_in_domain_order() -> None:
    """A model whose opsets come in either order is saved as the same bytes, '' first."""
    from onnx import TensorProto, helper

    def model(domains: list[str]) -> bytes:
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        versions = {"": 9, "ai.onnx.ml": 1}
        built = helper.make_model(
            graph, opset_imports=[helper.make_opsetid(d, versions[d]) for d in domains]
        )
        sort_opset_imports(built)
        assert [o.domain for o in built.opset_import] == ["", "ai.onnx.ml"]
        return bytes(built.SerializeToString(deterministic=True))

    assert model(["ai.onnx.ml", ""]) == model(["", "ai.onnx.ml"])


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
