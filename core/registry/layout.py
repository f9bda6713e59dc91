"""The registry layout, defined once: the store's key prefixes and the files of a version.

Keys inside the store (a local directory, or ``s3://bucket/prefix`` for scale)::

    climate/registry.json                        what this store is (format, layout)
    climate/models/<version>/<file>              the version's files, each created once
    climate/index/<version>.json                 the commit marker = the registry manifest entry,
                                                 signed by the pipeline key (format 2)
    climate/rollbacks/<id>/<file>                rollback reports
    climate/monitoring/<version>/<run id>/<file> monitoring runs (``run.json`` last)
    climate/checkpoints/<seq:012d>.json          signed ledger checkpoints (create-once)

The files of a version, by the stage that makes them (:func:`core.pipeline.stage_version`
lays them out in a folder; :meth:`core.registry.versions.Registry.push` stores that folder)::

    candidate     model.onnx  model_metadata.json  model_summary.json
                  xai/*  telemetry/*  data/*  provenance/*
    sign          model.sig  integrity.json
    gates         gates.json
    describe      model.stac.json  provenance.json
    sovereignty   sovereignty/*

``data/`` holds the drift reference and the validation data, so monitoring and
``kfm ci --version`` work from a registry version alone; ``provenance/`` is the candidate's own
training record. The signing and describe names are the names those stages write
(:mod:`core.signing.bundle`, :mod:`core.describe.stac`); a test keeps them equal. This module
imports nothing at run time, so every stage and the command line can name the layout without
its cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Literal

REGISTRY_FORMAT: Literal[2] = 2
"""2: index entries are DSSE envelopes signed by the pipeline key (:mod:`core.registry.records`)."""
PREFIX = "climate"
MODELS = f"{PREFIX}/models"
INDEX = f"{PREFIX}/index"
ROLLBACKS = f"{PREFIX}/rollbacks"
MONITORING = f"{PREFIX}/monitoring"
CHECKPOINTS = f"{PREFIX}/checkpoints"
REGISTRY_MANIFEST = f"{PREFIX}/registry.json"

MODEL_FILE = "model.onnx"
METADATA_FILE = "model_metadata.json"
SUMMARY_FILE = "model_summary.json"
SIGNATURE_FILE = "model.sig"
INTEGRITY_FILE = "integrity.json"
GATES_FILE = "gates.json"
ITEM_FILE = "model.stac.json"
PROVENANCE_FILE = "provenance.json"
SOVEREIGNTY_DIR = "sovereignty"
DATA_DIR = "data"

CANDIDATE_FILES: tuple[str, ...] = (MODEL_FILE, METADATA_FILE, SUMMARY_FILE)
"""Files a version takes from the candidate, as they are."""
CANDIDATE_DIRS: tuple[str, ...] = ("xai", "telemetry", DATA_DIR, "provenance")
"""Folders a version takes from the candidate when it has them, as they are."""
DEPLOY_OUTPUTS: tuple[str, ...] = (ITEM_FILE, PROVENANCE_FILE, GATES_FILE, SOVEREIGNTY_DIR)
"""What staging adds besides the candidate's own files and its signature."""

REQUIRED_FILES: tuple[str, ...] = (
    MODEL_FILE,
    ITEM_FILE,
    PROVENANCE_FILE,
    SIGNATURE_FILE,
    GATES_FILE,
)
OPTIONAL_FILES: tuple[str, ...] = (METADATA_FILE, SUMMARY_FILE, INTEGRITY_FILE)
OPTIONAL_DIRS: tuple[str, ...] = ("xai", "telemetry", SOVEREIGNTY_DIR, DATA_DIR, "provenance")


def version_prefix(version: str) -> str:
    """``climate/models/<version>``: where a version's files are stored."""
    return f"{MODELS}/{version}"


def version_key(version: str, name: str) -> str:
    """The key of one file of a version."""
    return f"{MODELS}/{version}/{name}"


def index_key(version: str) -> str:
    """``climate/index/<version>.json``: a version's commit marker."""
    return f"{INDEX}/{version}.json"


def checkpoint_key(seq: int) -> str:
    """``climate/checkpoints/<seq:012d>.json``: a signed checkpoint of the ledger at ``seq``.

    Zero-padded so that name order is ledger order.
    """
    return f"{CHECKPOINTS}/{seq:012d}.json"


def layout_summary() -> dict[str, str]:
    """The layout as recorded in ``climate/registry.json``."""
    files = (*REQUIRED_FILES, *OPTIONAL_FILES, *(f"{d}/*" for d in OPTIONAL_DIRS))
    return {
        "models": f"{MODELS}/<version>/" + "{" + ", ".join(files) + "}",
        "index": f"{INDEX}/<version>.json (commit marker, written last, signed)",
        "rollbacks": f"{ROLLBACKS}/<id>/",
        "checkpoints": f"{CHECKPOINTS}/<seq>.json (signed ledger checkpoints)",
    }
