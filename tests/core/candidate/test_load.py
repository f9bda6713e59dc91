"""Loading and checking candidates: the reference passes, each kind of bad candidate is named."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from core.candidate.load import check_candidate, load_candidate
from core.cli import app
from core.errors import CandidateError


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _edit_text(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        p = root / rel
        text = p.read_text()
        assert old in text, f"fixture text {old!r} not in {rel}"
        p.write_text(text.replace(old, new, 1))

    return mutate


def _meta(change: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda root: _edit_json(root / "model_metadata.json", change)


def _summary(change: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda root: _edit_json(root / "model_summary.json", change)


def _remove(rel: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        p = root / rel
        if p.is_dir():
            for child in p.iterdir():
                child.unlink()
            p.rmdir()
        else:
            p.unlink()

    return mutate


def _dataset(rel: str, change: Callable[[xr.Dataset], xr.Dataset]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        p = root / rel
        with xr.open_dataset(p) as ds:
            changed = change(ds.load())
        p.unlink()
        changed.to_netcdf(p)

    return mutate


def _symlink_model(root: Path) -> None:
    outside = root.parent / "elsewhere.onnx"
    (root / "model.onnx").rename(outside)
    os.symlink(outside, root / "model.onnx")


def _nan_values(ds: xr.Dataset) -> xr.Dataset:
    air = ds["air"].values.copy()
    air[0, 0, 0] = np.nan
    return ds.assign(air=(ds["air"].dims, air))


def _telemetry(change: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda root: _edit_json(root / "telemetry" / "training.json", change)


def _prov_backwards(root: Path) -> None:
    p = root / "provenance" / "training.prov.json"
    doc = json.loads(p.read_text())
    act = next(a for k, a in doc["activity"].items() if k.endswith("/training"))
    act["prov:endTime"] = "2000-01-01T00:00:00+00:00"
    p.write_text(json.dumps(doc))


BAD_CANDIDATES: list[tuple[str, Callable[[Path], None], str, str | None, str]] = [
    # id, mutation, file, field, message fragment
    ("missing-onnx", _remove("model.onnx"), "model.onnx", None, "required file is missing"),
    (
        "missing-metadata",
        _remove("model_metadata.json"),
        "model_metadata.json",
        None,
        "required file is missing",
    ),
    (
        "missing-summary",
        _remove("model_summary.json"),
        "model_summary.json",
        None,
        "required file is missing",
    ),
    (
        "missing-xai",
        _remove("xai/shap_summary.json"),
        "xai/shap_summary.json",
        None,
        "required file is missing",
    ),
    (
        "missing-prov",
        _remove("provenance/training.prov.json"),
        "provenance/training.prov.json",
        None,
        "required file is missing",
    ),
    ("missing-telemetry", _remove("telemetry"), "telemetry/", None, "required folder is missing"),
    (
        "malformed-json",
        lambda r: (r / "model_metadata.json").write_text('{"name": '),
        "model_metadata.json",
        None,
        "malformed JSON",
    ),
    (
        "json-array",
        lambda r: (r / "model_summary.json").write_text("[1, 2]"),
        "model_summary.json",
        None,
        "top level must be a JSON object",
    ),
    (
        "wrong-type-metric",
        _summary(lambda d: d["metrics"]["validation"].update(rmse="1.2")),
        "model_summary.json",
        "metrics.validation.rmse",
        "valid number",
    ),
    (
        "wrong-type-seed",
        _meta(lambda d: d.update(seed="42")),
        "model_metadata.json",
        "seed",
        "valid integer",
    ),
    (
        "nan-metric",
        _edit_text("model_summary.json", '"bias": ', '"bias": NaN, "x": '),
        "model_summary.json",
        None,
        "non-finite number NaN",
    ),
    (
        "infinite-metric",
        _edit_text("model_summary.json", '"mae": ', '"mae": Infinity, "y": '),
        "model_summary.json",
        None,
        "non-finite number Infinity",
    ),
    (
        "negative-rmse",
        _summary(lambda d: d["metrics"]["validation"].update(rmse=-1.0)),
        "model_summary.json",
        "metrics.validation.rmse",
        "greater than or equal to 0",
    ),
    ("symlink-model", _symlink_model, "model.onnx", "model.onnx", "symbolic links are not allowed"),
    (
        "dotdot-path",
        _meta(lambda d: d.update(validation_data="../../etc/validation.nc")),
        "model_metadata.json",
        "validation_data",
        "path escapes the candidate directory",
    ),
    (
        "absolute-path",
        _meta(lambda d: d.update(reference_data="/etc/passwd")),
        "model_metadata.json",
        "reference_data",
        "path escapes the candidate directory",
    ),
    (
        "not-onnx",
        lambda r: (r / "model.onnx").write_bytes(b"this is not a model\n" * 10),
        "model.onnx",
        None,
        "not a valid ONNX model",
    ),
    (
        "onnx-input-name",
        _meta(lambda d: d["inputs"][0].update(name="x")),
        "model_metadata.json",
        "inputs",
        "ONNX inputs disagree with the metadata",
    ),
    (
        "onnx-output-dtype",
        _meta(lambda d: d["outputs"][0].update(dtype="float64")),
        "model_metadata.json",
        "outputs.air_temperature.dtype",
        "dtype disagrees",
    ),
    (
        "onnx-input-width",
        _meta(lambda d: d["inputs"][0].update(shape=[-1, 4])),
        "model_metadata.json",
        "inputs.features.shape",
        "shape disagrees",
    ),
    (
        "oversized-metadata",
        _meta(lambda d: d.update(description="x" * (5 * 1024 * 1024))),
        "model_metadata.json",
        None,
        "file is too large",
    ),
    (
        "validation-missing-target",
        _dataset("data/validation.nc", lambda ds: ds.drop_vars("air")),
        "data/validation.nc",
        "air",
        "lacks the target variable",
    ),
    (
        "validation-missing-input",
        _dataset("data/validation.nc", lambda ds: ds.drop_vars("t_coarse")),
        "data/validation.nc",
        "t_coarse",
        "lacks the input variable",
    ),
    (
        "validation-nan",
        _dataset("data/validation.nc", _nan_values),
        "data/validation.nc",
        "air",
        "NaN or infinite",
    ),
    (
        "validation-not-netcdf",
        lambda r: (r / "data" / "validation.nc").write_text("time,lat,lon\n"),
        "data/validation.nc",
        None,
        "not a readable netCDF file",
    ),
    (
        "unknown-field",
        _meta(lambda d: d.update(colour="blue")),
        "model_metadata.json",
        "colour",
        "unknown field",
    ),
    (
        "missing-field",
        _meta(lambda d: d.pop("seed")),
        "model_metadata.json",
        "seed",
        "required field is missing",
    ),
    (
        "version-unicode-digits",
        _meta(lambda d: d.update(version="١.٢.٣")),
        "model_metadata.json",
        "version",
        "should match pattern",
    ),
    (
        "naive-datetime",
        _meta(lambda d: d.update(created="2026-01-01T00:00:00")),
        "model_metadata.json",
        "created",
        "must carry a timezone",
    ),
    (
        "summary-other-model",
        _summary(lambda d: d.update(version="9.9.9")),
        "model_summary.json",
        "name/version",
        "summary describes another model",
    ),
    (
        "xai-features",
        lambda r: _edit_json(
            r / "xai" / "shap_summary.json", lambda d: d.update(features=["a", "b", "c", "d", "e"])
        ),
        "xai/shap_summary.json",
        "features",
        "XAI features disagree",
    ),
    (
        "telemetry-negative-energy",
        _telemetry(lambda d: d.update(energy_kwh=-0.5)),
        "telemetry/training.json",
        "energy_kwh",
        "greater than or equal to 0",
    ),
    (
        "telemetry-method",
        _telemetry(lambda d: d.update(method="guessed")),
        "telemetry/training.json",
        "method",
        "Input should be 'measured' or 'estimated'",
    ),
    (
        "prov-backwards",
        _prov_backwards,
        "provenance/training.prov.json",
        None,
        "activity ends before it starts",
    ),
]


def test_reference_candidate_loads(reference_candidate_dir: Path) -> None:
    """The reference candidate is complete and consistent."""
    report = check_candidate(reference_candidate_dir)
    assert report.ok, report.to_dict()
    loaded = load_candidate(reference_candidate_dir)
    assert loaded.metadata.task == "downscaling"
    assert (
        loaded.summary.metrics["validation"].rmse
        < loaded.summary.metrics["validation"].baseline_rmse
    )


@pytest.mark.parametrize(
    ("mutate", "file", "field", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CANDIDATES],
)
def test_bad_candidate_is_named(
    candidate: Path, mutate: Callable[[Path], None], file: str, field: str | None, fragment: str
) -> None:
    """Each bad candidate fails to load with an error naming its file, field and problem."""
    mutate(candidate)
    with pytest.raises(CandidateError) as caught:
        load_candidate(candidate)
    error = caught.value
    assert fragment in error.diagnostics()
    assert error.file is not None and error.file.endswith(file)
    if field is not None:
        assert error.field == field
    report = check_candidate(candidate)
    assert not report.ok
    assert any(fragment in c.detail for c in report.checks if not c.ok)


def test_matrix_is_large_enough() -> None:
    """The bad-candidate matrix covers at least twenty distinct cases."""
    assert len({case[0] for case in BAD_CANDIDATES}) >= 20


def test_cli_check_exit_codes(candidate: Path) -> None:
    """`kfm candidate check` exits 0 on the reference and 1 on a broken copy, with JSON output."""
    runner = CliRunner()
    ok = runner.invoke(app, ["candidate", "check", str(candidate), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    (candidate / "model.onnx").write_bytes(b"junk")
    bad = runner.invoke(app, ["candidate", "check", str(candidate), "--json"])
    assert bad.exit_code == 1
    failed = [c for c in json.loads(bad.output)["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["model.onnx"]
    assert failed[0]["error"]["file"] == "model.onnx"


def test_cli_missing_directory_is_clear(tmp_path: Path) -> None:
    """A missing candidate directory is reported, not a traceback."""
    result = CliRunner().invoke(app, ["candidate", "check", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "not a directory" in result.output
