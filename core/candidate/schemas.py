"""JSON Schemas of the domain types, generated in memory by :func:`all_schemas`.

The engine validates against these in-memory schemas and never reads a schema file.
``kfm schemas export`` writes them into a folder (``./schemas`` by default: the repository's
``schemas/`` is the exported copy for users, and a test fails when it is stale). Other stages
register extra schemas (regions, the STAC project extension) through :data:`EXTRA_SCHEMAS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.candidate.models import DOMAIN_TYPES
from core.jsonio import dumps

EXPORT_DIR = Path("schemas")  # relative: the current directory's schemas/
SCHEMA_BASE_URI = "https://kfm.example/schemas/"

# file name -> "module:function" returning a JSON Schema dict (imported lazily).
EXTRA_SCHEMAS: dict[str, str] = {
    "stac-kfm-extension.schema.json": "core.describe.extension:kfm_extension_schema",
    "regions.schema.json": "core.sovereignty.regions:regions_json_schema",
}


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every schema the project publishes, by file name."""
    out: dict[str, dict[str, Any]] = {}
    for name, model in DOMAIN_TYPES.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{SCHEMA_BASE_URI}{name}.schema.json"
        out[f"{name}.schema.json"] = schema
    for file_name, target in EXTRA_SCHEMAS.items():
        module, _, func = target.partition(":")
        factory: Callable[[], dict[str, Any]] = getattr(importlib.import_module(module), func)
        out[file_name] = factory()
    return out


def export_schemas(directory: Path = EXPORT_DIR) -> list[Path]:
    """Write every schema into ``directory``; returns the written paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, schema in sorted(all_schemas().items()):
        path = directory / file_name
        path.write_text(dumps(schema), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path = EXPORT_DIR) -> list[str]:
    """File names in ``directory`` that differ from what export would write."""
    stale = []
    for file_name, schema in sorted(all_schemas().items()):
        path = directory / file_name
        if not path.exists() or path.read_text(encoding="utf-8") != dumps(schema):
            stale.append(file_name)
    return stale
