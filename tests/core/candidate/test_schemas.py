"""JSON Schemas in schemas/ are current and describe the files a candidate holds."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from core.candidate.schemas import SCHEMA_DIR, all_schemas, stale_schemas


def test_schemas_are_current() -> None:
    """schemas/ matches what `kfm schemas export` would write (run it after changing a model)."""
    assert stale_schemas() == []


def test_stale_schema_is_detected(tmp_path: Path) -> None:
    """An edited schema file is reported as stale."""
    for name, schema in all_schemas().items():
        (tmp_path / name).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    target = tmp_path / "model_metadata.schema.json"
    target.write_text(target.read_text().replace('"title"', '"titel"', 1))
    assert "model_metadata.schema.json" in stale_schemas(tmp_path)


def test_reference_files_validate_against_schemas(reference_candidate_dir: Path) -> None:
    """The reference candidate's JSON files validate against the exported schemas."""
    pairs = {
        "model_metadata.json": "model_metadata.schema.json",
        "model_summary.json": "model_summary.schema.json",
        "xai/shap_summary.json": "xai_summary.schema.json",
        "telemetry/training.json": "telemetry.schema.json",
    }
    for rel, schema_name in pairs.items():
        schema = json.loads((SCHEMA_DIR / schema_name).read_text())
        jsonschema.validate(json.loads((reference_candidate_dir / rel).read_text()), schema)
