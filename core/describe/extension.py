"""The project's STAC extension (``kfm:``): what MLM and the standard extensions have no field for.

MLM v1.4.0 rejects any ``mlm:`` field it does not define, so the model's metrics, explainability,
training data, CARE / sovereignty screening, energy and carbon, and the integrity block live under
the ``kfm:`` prefix, described by :func:`kfm_extension_schema` (a STAC extension schema in the
style of ``stac-extensions/template``: unknown ``kfm:`` fields are refused, other prefixes pass).
``kfm schemas export`` writes it to ``schemas/stac-kfm-extension.schema.json``; items list
:data:`KFM_EXTENSION_URI` in ``stac_extensions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft7Validator

KFM_EXTENSION_VERSION = "1.0.0"
KFM_EXTENSION_URI = f"https://kfm.example/stac/kfm/v{KFM_EXTENSION_VERSION}/schema.json"
KFM_EXTENSION_FILE = "stac-kfm-extension.schema.json"

_TIERS = ["internal", "public-generalized", "restricted", "withheld"]
_MULTIHASH = {"type": "string", "pattern": "^1220[0-9a-f]{64}$"}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}
_NUMBER_GE0 = {"type": "number", "minimum": 0}
_DATETIME = {"type": "string", "format": "date-time"}


def _metrics_split() -> dict[str, Any]:
    names = ["rmse", "mae", "bias", "baseline_rmse", "baseline_mae", "n_samples"]
    return {
        "type": "object",
        "required": names,
        "properties": {
            "rmse": _NUMBER_GE0,
            "mae": _NUMBER_GE0,
            "bias": {"type": "number"},
            "baseline_rmse": _NUMBER_GE0,
            "baseline_mae": _NUMBER_GE0,
            "n_samples": {"type": "integer", "minimum": 1},
        },
        "additionalProperties": False,
    }


def _fields() -> dict[str, Any]:
    return {
        "kfm:model_family": {"type": "string", "minLength": 1},
        "kfm:task": {
            "title": "Domain task (mlm:tasks holds the nearest MLM task names)",
            "enum": ["downscaling", "regression", "anomaly-detection", "hazard", "hydrology"],
        },
        "kfm:seed": {"type": "integer", "minimum": 0},
        "kfm:target": {
            "type": "object",
            "required": ["variable", "standard_name", "units"],
            "properties": {
                "variable": {"type": "string", "minLength": 1},
                "standard_name": {"type": "string"},
                "units": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "kfm:onnx_opset": {"type": "integer", "minimum": 1},
        "kfm:training_data": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "title", "role", "source", "path", "license", "sha256"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "title": {"type": "string"},
                    "role": {"enum": ["training", "validation", "reference"]},
                    "source": {"type": "string", "minLength": 1},
                    "path": {"type": "string"},
                    "license": {"type": "string", "minLength": 1},
                    "sha256": _SHA256,
                    "citation": {"type": "string"},
                },
                "additionalProperties": False,
            },
        },
        "kfm:metrics": {
            "title": "Training-time skill of the model and of its baseline, per split",
            "type": "object",
            "required": ["units", "splits"],
            "properties": {
                "units": {"type": "string"},
                "training_period": {
                    "type": "array",
                    "items": _DATETIME,
                    "minItems": 2,
                    "maxItems": 2,
                },
                "validation_period": {
                    "type": "array",
                    "items": _DATETIME,
                    "minItems": 2,
                    "maxItems": 2,
                },
                "splits": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"enum": ["train", "validation"]},
                    "additionalProperties": _metrics_split(),
                },
            },
            "additionalProperties": False,
        },
        "kfm:explainability": {
            "type": "object",
            "required": ["method", "explainer", "features", "mean_abs_attribution", "asset"],
            "properties": {
                "method": {"type": "string", "minLength": 1},
                "explainer": {"type": "string"},
                "library_version": {"type": "string"},
                "features": _STRINGS,
                "mean_abs_attribution": {"type": "object", "additionalProperties": _NUMBER_GE0},
                "seeds": {"type": "array", "items": {"type": "integer"}},
                "sample_size": {"type": "integer", "minimum": 1},
                "asset": {"type": "string", "minLength": 1, "description": "key of the XAI asset"},
            },
            "additionalProperties": False,
        },
        "kfm:care": _care(),
        "kfm:energy": {
            "title": "Energy and carbon of each recorded run, measured or estimated",
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": [
                    "run_id",
                    "kind",
                    "method",
                    "estimator",
                    "energy_kwh",
                    "emissions_kg_co2e",
                    "duration_s",
                    "asset",
                ],
                "properties": {
                    "run_id": {"type": "string", "minLength": 1},
                    "kind": {"enum": ["training", "inference", "monitoring"]},
                    "method": {"enum": ["measured", "estimated"]},
                    "estimator": {"type": "string"},
                    "energy_kwh": _NUMBER_GE0,
                    "emissions_kg_co2e": _NUMBER_GE0,
                    "duration_s": {"type": "number", "exclusiveMinimum": 0},
                    "grid_intensity_g_per_kwh": _NUMBER_GE0,
                    "pue": {"type": "number", "minimum": 1},
                    "location": {"type": "string"},
                    "asset": {"type": "string", "minLength": 1},
                },
                "additionalProperties": False,
            },
        },
        "kfm:integrity": {
            "title": "The signing stage's integrity block",
            "type": "object",
            "required": ["hash", "signature", "immutable"],
            "properties": {
                "hash": _MULTIHASH,
                "signature": {
                    "type": "object",
                    "required": ["href", "file:checksum"],
                    "properties": {"href": {"type": "string"}, "file:checksum": _MULTIHASH},
                    "additionalProperties": False,
                },
                "immutable": {"const": True},
            },
            "additionalProperties": False,
        },
    }


def _care() -> dict[str, Any]:
    """``kfm:care``: the candidate's declared CARE metadata merged with the screen's block.

    The screen's part is built by :func:`core.sovereignty.care.care_metadata` (its docstring shows it);
    ``authority_to_control`` at the top is the candidate's declared statement, the per-region
    authority (steward, consent, what is published) is ``screening.authority_to_control``.
    """
    count = {"type": "integer", "minimum": 0}
    region = {
        "type": "object",
        "required": [
            "region_id",
            "nation",
            "steward_id",
            "tier",
            "consent",
            "published",
            "resolution",
        ],
        "properties": {
            "region_id": {"type": "string", "minLength": 1},
            "nation": {"type": "string", "minLength": 1},
            "steward_id": {"type": "string", "minLength": 1},
            "tier": {"enum": _TIERS},
            "consent": {"enum": ["granted", "pending", "withdrawn", "denied", None]},
            "published": {"type": "boolean"},
            "withheld_reason": {"type": ["string", "null"]},
            "resolution": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": 15,
                "description": "H3 resolution published inside the region; null = nothing",
            },
            "cells_published": count,
            "cells_suppressed": count,
        },
        "additionalProperties": False,
    }
    return {
        "title": "CARE principles metadata, plus the sovereignty screen's outcome when screened",
        "type": "object",
        "required": ["authority_to_control", "scope", "labels"],
        "properties": {
            "authority_to_control": {"type": "string", "minLength": 1},
            "scope": {
                "enum": _TIERS,
                "description": "declared tier; after screening, the release's scope",
            },
            "masking": {"enum": ["h3-climate-generalized", "none"]},
            "labels": _STRINGS,
            "notices": _STRINGS,
            "steward_contacts": _STRINGS,
            "notes": {"type": "array", "items": {"type": "string"}},
            "collective_benefit": {"type": "string"},
            "responsibility": {"type": "string"},
            "ethics": {"type": "string"},
            "screening": {
                "type": "object",
                "required": ["authority_to_control", "min_count", "withheld_buffer_rings"],
                "properties": {
                    "authority_to_control": {
                        "type": "array",
                        "items": region,
                        "description": "one entry per region the model's footprint touches",
                    },
                    "min_count": {"type": "integer", "minimum": 1},
                    "withheld_buffer_rings": count,
                    "target_grid_deg": {"type": "number", "exclusiveMinimum": 0},
                    "conflicts": count,
                    "report": {"type": "string", "description": "relative href of report.json"},
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }


REQUIRED_ITEM_FIELDS = ("kfm:training_data", "kfm:metrics", "kfm:care")


def kfm_extension_schema() -> dict[str, Any]:
    """The JSON Schema of the ``kfm:`` STAC extension (draft-07, like the STAC extensions)."""
    fields = _fields()
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": KFM_EXTENSION_URI,
        "title": "KFM climate model deployment extension",
        "description": (
            "Fields of a KFM model item that MLM v1.4.0 and the standard STAC extensions do not "
            "define: metrics, explainability, training data, CARE and sovereignty screening, "
            "energy and carbon, integrity. Unknown kfm: fields are refused."
        ),
        "type": "object",
        "required": ["type", "stac_extensions", "properties", "assets"],
        "properties": {
            "type": {"const": "Feature"},
            "stac_extensions": {"type": "array", "contains": {"const": KFM_EXTENSION_URI}},
            "properties": {
                "allOf": [
                    {"required": list(REQUIRED_ITEM_FIELDS)},
                    {"$ref": "#/definitions/fields"},
                ]
            },
            "assets": {
                "type": "object",
                "additionalProperties": {"$ref": "#/definitions/no_kfm_fields"},
            },
        },
        "definitions": {
            "fields": {
                "type": "object",
                "properties": fields,
                "patternProperties": {"^(?!kfm:)": {}},
                "additionalProperties": False,
            },
            "no_kfm_fields": {
                "type": "object",
                "patternProperties": {"^(?!kfm:)": {}},
                "additionalProperties": False,
            },
        },
    }


def kfm_field_errors(item: Mapping[str, Any]) -> list[str]:
    """Every violation of the ``kfm:`` extension schema in an item dict ([] when valid)."""
    validator = Draft7Validator(kfm_extension_schema())
    errors = sorted(validator.iter_errors(dict(item)), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {_short(e.message)}" for e in errors]


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def care_schema() -> dict[str, Any]:
    """The schema of ``kfm:care`` alone (what the sovereignty stage injects)."""
    return _care()
