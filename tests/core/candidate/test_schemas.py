"""JSON Schemas: generated in memory, exported to schemas/ (kept current), and describing the files
a candidate holds."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from core.candidate.schemas import all_schemas, stale_schemas
from core.cli import app
from tests.conftest import REPO_ROOT


def test_schemas_are_current() -> None:
    """schemas/ matches what `kfm schemas export` would write (run it after changing a model)."""
    assert stale_schemas(REPO_ROOT / "schemas") == []


def test_stale_schema_is_detected(tmp_path: Path) -> None:
    """An edited schema file is reported as stale."""
    for name, schema in all_schemas().items():
        (tmp_path / name).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    target = tmp_path / "model_metadata.schema.json"
    target.write_text(target.read_text().replace('"title"', '"titel"', 1))
    assert "model_metadata.schema.json" in stale_schemas(tmp_path)


def test_reference_files_validate_against_schemas(reference_candidate_dir: Path) -> None:
    """The reference candidate's JSON files validate against the schemas generated in memory."""
    pairs = {
        "model_metadata.json": "model_metadata.schema.json",
        "model_summary.json": "model_summary.schema.json",
        "xai/shap_summary.json": "xai_summary.schema.json",
        "telemetry/training.json": "telemetry.schema.json",
    }
    schemas = all_schemas()
    for rel, schema_name in pairs.items():
        data = json.loads((reference_candidate_dir / rel).read_text())
        jsonschema.validate(data, schemas[schema_name])


def test_cli_export_and_check_default_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kfm schemas check` fails where ./schemas is missing; `export` writes ./schemas there."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["schemas", "check"]).exit_code == 1
    result = runner.invoke(app, ["schemas", "export"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "schemas").iterdir()) == sorted(all_schemas())
    assert runner.invoke(app, ["schemas", "check"]).exit_code == 0
