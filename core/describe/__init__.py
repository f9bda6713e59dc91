"""Describe stage: the model's STAC Item (MLM) and its W3C PROV lineage, byte-identical on rebuild.

- :mod:`core.describe.stac` — :func:`build_item` (pystac + MLM v1.4.0, file, processing, version,
  scientific and the ``kfm:`` extension; asset checksums as SHA-256 multihashes).
- :mod:`core.describe.extension` — the ``kfm:`` extension's JSON Schema (``schemas/``).
- :mod:`core.describe.lineage` — :class:`StageRecord` and :func:`lineage_document`: the
  candidate's training PROV plus one activity per later stage; PROV-JSON, PROV-N, Turtle.
- :mod:`core.describe.stages` — :func:`deployment_stages` (validation, signing, screening, push
  as ``kfm deploy`` runs them) and :func:`lineage_with_decisions` (a version's provenance with its
  ledger decisions appended, for the dashboard's lineage page).
- :mod:`core.describe.validate` — offline validation against the standard schemas shipped as
  package data: STAC core and every listed extension through pystac's validator, PROV-JSON.
- :mod:`core.describe.checks` — the describe checks: those schemas, and what schemas cannot
  check: files vs checksums, time order, ``doc.unified()``.
- :mod:`core.describe.run` — :func:`describe_candidate` ties them together for ``kfm describe``.
"""

from core.describe.checks import (
    Finding,
    check_item_assets,
    check_item_extension,
    check_item_schemas,
    check_prov_json_schema,
    check_prov_order,
    check_prov_unified,
    describe_findings,
    require,
)
from core.describe.extension import KFM_EXTENSION_URI, kfm_extension_schema
from core.describe.lineage import (
    AgentRef,
    EntityRef,
    LineageIds,
    StageRecord,
    candidate_stages,
    lineage_document,
    prov_json,
    prov_n,
    prov_turtle,
    read_stages,
)
from core.describe.run import OUTPUT_FILES, Description, describe_candidate
from core.describe.stac import MLM_EXTENSION_URI, MLM_VERSION, build_item, item_json
from core.describe.stages import decision_stages, deployment_stages, lineage_with_decisions

__all__ = [
    "KFM_EXTENSION_URI",
    "MLM_EXTENSION_URI",
    "MLM_VERSION",
    "OUTPUT_FILES",
    "AgentRef",
    "Description",
    "EntityRef",
    "Finding",
    "LineageIds",
    "StageRecord",
    "build_item",
    "candidate_stages",
    "check_item_assets",
    "check_item_extension",
    "check_item_schemas",
    "check_prov_json_schema",
    "check_prov_order",
    "check_prov_unified",
    "decision_stages",
    "deployment_stages",
    "describe_candidate",
    "describe_findings",
    "item_json",
    "kfm_extension_schema",
    "lineage_document",
    "lineage_with_decisions",
    "prov_json",
    "prov_n",
    "prov_turtle",
    "read_stages",
    "require",
]
