"""``kfm ci --version``: the nine checks on a registry version, from its stored files alone.

A registry version holds what the signed candidate holds (``model.sig`` and ``integrity.json``
included; older versions lack ``provenance/training.prov.json``, rebuilt here from the stored
lineage), plus what deploy made of it (``model.stac.json``, ``provenance.json``, ``gates.json``,
``sovereignty/``):

1. :meth:`core.registry.versions.Registry.verify` verifies the version record's signature by
   the pipeline key and re-hashes every stored file against it (check ``registry``; a tampered
   file or record is named there). When it fails nothing else runs: no file of a version that
   does not verify is read, and its model is never run;
2. :func:`fetch_version` writes the stored files into ``stored/`` and a candidate-shaped copy
   into ``candidate/`` (signature and integrity record included; ``provenance/training.prov.json``
   taken back out of the stored lineage when the version lacks it (:func:`training_prov_from_lineage`: the stored PROV minus every
   stage activity, its relations and the entities and agents only they name));
3. the candidate checks (metadata schema, XAI, telemetry, FAIR+CARE, inference) run on
   ``candidate/``; the STAC item and sovereignty checks read the **stored** item and
   ``published.geojson``;
4. one fresh staging (``python -m core.pipeline``, a new interpreter) rebuilds the deployment from
   ``candidate/`` with the stored signature, at the grid step recorded in the stored CARE block;
   ``deployment-hash`` compares its registry layout with the stored files (``model.sig``
   excluded) and ``rebuild`` compares its describe and screen outputs with the stored ones,
   byte for byte.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.ci import run as ci_run
from core.ci.report import CiCheck, CiError, CiFailure, CiReport
from core.registry.layout import (
    DEPLOY_OUTPUTS,
    PROVENANCE_FILE,
    SIGNATURE_FILE,
    SOVEREIGNTY_DIR,
    index_key,
    version_key,
    version_prefix,
)
from core.sovereignty.screen import CARE_FILE

PROV_ELEMENTS = ("prefix", "entity", "activity", "agent")
TRAINING_PROV = "provenance/training.prov.json"
REGISTRY_CHECK = "registry"
REGISTRY_TITLE = "Registry version integrity"
Progress = Callable[[str], None]


def training_prov_from_lineage(lineage: Mapping[str, Any]) -> dict[str, Any]:
    """The training PROV inside a stored lineage: every stage (``kfm:timing``) removed."""
    activities = dict(lineage.get("activity", {}))
    stages = [key for key, value in activities.items() if "kfm:timing" in value]
    if len(stages) == len(activities):
        raise CiError(
            "stored provenance has no training activity",
            file="provenance.json",
            field="activity",
            expected="the candidate's training activities plus the stages",
            found=sorted(activities),
        )
    prefixes = tuple(
        "kfm:rel/" + key.removeprefix("kfm:").removeprefix("activity/") + "/" for key in stages
    )
    kept: dict[str, Any] = {}
    dropped_refs: set[str] = set()
    kept_refs: set[str] = set()
    for group, records in lineage.items():
        if group in PROV_ELEMENTS:
            continue
        remaining = {}
        for key, record in records.items():
            refs = {v for v in record.values() if isinstance(v, str)}
            if key.startswith(prefixes):
                dropped_refs |= refs
            else:
                remaining[key] = record
                kept_refs |= refs
        if remaining:
            kept[group] = remaining
    only_stages = dropped_refs - kept_refs
    out: dict[str, Any] = {"prefix": dict(lineage.get("prefix", {}))}
    for group in ("entity", "agent"):
        records = {k: v for k, v in lineage.get(group, {}).items() if k not in only_stages}
        if records:
            out[group] = records
    out["activity"] = {k: v for k, v in activities.items() if k not in stages}
    out.update(kept)
    return out


def fetch_version(registry: Any, version: str, out: Path) -> tuple[Path, Path]:
    """Write a version's stored files into ``out/stored`` and a candidate into ``out/candidate``."""
    record = registry.show(version)
    stored, candidate = out / "stored", out / "candidate"
    for entry in record.manifest.files:
        path = stored / entry.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(registry.read_file(version, entry.name))
    candidate.mkdir(parents=True)
    for path in sorted(stored.iterdir()):
        if path.name in DEPLOY_OUTPUTS:
            continue
        if path.is_dir():
            shutil.copytree(path, candidate / path.name)
        else:
            shutil.copyfile(path, candidate / path.name)
    target = candidate / TRAINING_PROV
    if target.is_file():  # versions pushed with their training record keep it as stored
        return stored, candidate
    try:
        lineage = json.loads((stored / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CiError(
            "stored provenance is unreadable",
            file=version_key(version, PROVENANCE_FILE),
            expected="PROV-JSON",
            found=f"{type(error).__name__}: {error}",
        ) from error
    target.parent.mkdir(parents=True)
    target.write_text(
        json.dumps(training_prov_from_lineage(lineage), indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    return stored, candidate


def stored_grid_step(stored: Path, default: float) -> float:
    """The target grid step the stored screen used (its CARE block), else ``default``."""
    try:
        care = json.loads((stored / SOVEREIGNTY_DIR / CARE_FILE).read_text(encoding="utf-8"))
        step = care["kfm:care"]["screening"]["target_grid_deg"]
    except (OSError, ValueError, KeyError, TypeError):
        return default
    return float(step) if isinstance(step, int | float) else default


def registry_check(report: Any, location: str) -> CiCheck:
    """The version record's signature, and every stored file re-hashed against it."""
    record = index_key(report.version)
    failures = []
    for problem in report.problems:
        name, _, detail = problem.partition(":")
        if name == record:
            failures.append(
                CiFailure(name, "signature", "a record signed by the pipeline key", detail.strip())
            )
        else:
            failures.append(
                CiFailure(
                    f"{location}/{name}",
                    "sha256",
                    "the digest in the version record",
                    detail.strip() if detail else problem,
                )
            )
    return CiCheck(
        REGISTRY_CHECK,
        REGISTRY_TITLE,
        f"{record} signed by the pipeline key; {report.checked} stored files re-hashed against it",
        tuple(failures),
    )


def run_ci_version(
    registry: Any,
    version: str,
    options: Any = None,
    progress: Progress | None = None,
) -> CiReport:
    """Every CI check on a registry version (see the module docstring)."""
    opts = options or ci_run.CiOptions()
    say = progress or (lambda _step: None)
    say("verifying the version record and re-hashing the stored files")
    location = version_prefix(version)
    integrity = registry_check(registry.verify(version), location)
    if not integrity.passed:
        refused = replace(
            integrity,
            notes=("the other checks did not run: the version does not verify, so none of its "
                   "files is read and its model is not run",),
        )  # fmt: skip
        return CiReport(target=f"registry version {version}", checks=(refused,))
    with tempfile.TemporaryDirectory(prefix="kfm-ci-version-") as tmp:
        stored, candidate = fetch_version(registry, version, Path(tmp))
        step = stored_grid_step(stored, opts.resolution_deg)
        fresh = Path(tmp) / "fresh"
        report = ci_run.run_checks(
            candidate,
            replace(opts, resolution_deg=step),
            say,
            stagings=[fresh],
            signature=stored / SIGNATURE_FILE,
            stored=stored,
        )
    checks = [integrity, *report.checks]
    return CiReport(target=f"registry version {version}", checks=tuple(checks))
