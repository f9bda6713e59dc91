"""The checks of the specification's "CI Validation Requirements", one function each.

Every function returns a :class:`core.ci.report.CiCheck` and never raises for a problem it
finds; an engine error met while checking becomes a failure naming its file and field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from core.candidate.schemas import all_schemas
from core.ci.report import CHECK_TITLES, CiCheck, CiFailure
from core.describe import KFM_EXTENSION_URI, check_item_assets
from core.describe.validate import (
    SchemaProblem,
    load_standards,
    prov_json_problems,
    schema_problems,
    stac_problems,
)
from core.errors import KfmError
from core.registry.layout import ITEM_FILE, PROVENANCE_FILE, SOVEREIGNTY_DIR

SCHEMA_FILES: dict[str, str] = {
    "model_metadata.json": "model_metadata.schema.json",
    "model_summary.json": "model_summary.schema.json",
    "xai/shap_summary.json": "xai_summary.schema.json",
}
PROV_FILE = "provenance/training.prov.json"
PROV_SCHEMA = "prov-json"  # the W3C PROV-JSON schema of core.describe.validate
TELEMETRY_SCHEMA = "telemetry.schema.json"
MLM_PREFIX = "https://stac-extensions.github.io/mlm/"
MAX_TEXT = 200


def short(value: Any, limit: int = MAX_TEXT) -> str:
    """A value as one line of text, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_failure(error: BaseException, *, file: str, message: str = "") -> CiFailure:
    """A failure from any exception met while checking (engine errors keep their fields)."""
    if isinstance(error, KfmError):
        return CiFailure.from_error(error, file=file, message=message)
    return CiFailure(
        file=file,
        field="-",
        expected="the check to run",
        found=f"{type(error).__name__}: {short(str(error))}",
        message=message or "the check could not run",
    )


# --------------------------------------------------------------------------- metadata schema
def standards_failure(error: KfmError, standards: Path | None) -> CiFailure:
    """An unusable standards folder (``kfm ci --standards``), as a failure of the check."""
    return replace(error_failure(error, file=str(standards)), field="--standards")


def schema_failures(problems: Iterable[SchemaProblem], *, file: str) -> list[CiFailure]:
    """Schema violations (:mod:`core.describe.validate`) as failures naming ``file``."""
    return [
        CiFailure(
            file=file,
            field=p.field,
            expected=p.expected,
            found=p.found,
            message=short(f"{p.schema}: {p.message}", 300),
        )
        for p in problems
    ]


def metadata_schema_check(root: Path, standards: Path | None = None) -> CiCheck:
    """The candidate's JSON files against the project's schemas (generated from the domain
    models), its PROV-JSON against the W3C PROV-JSON schema (packaged, or from ``standards``),
    then the loader's checks."""
    from core.candidate.load import check_candidate
    from core.jsonio import read_json_file

    failures: list[CiFailure] = []
    schemas = all_schemas()
    telemetry = sorted((root / "telemetry").glob("*.json")) if (root / "telemetry").is_dir() else []
    targets = [*SCHEMA_FILES.items(), (PROV_FILE, PROV_SCHEMA)]
    targets += [(p.relative_to(root).as_posix(), TELEMETRY_SCHEMA) for p in telemetry]
    if not telemetry:
        failures.append(CiFailure("telemetry/", "*.json", "at least one telemetry record", "none"))
    try:
        prov_source = load_standards(standards).source
    except KfmError as error:
        failures.append(standards_failure(error, standards))
        prov_source = None
    for rel, name in targets:
        path = root / rel
        if not path.is_file():
            failures.append(CiFailure(rel, "-", "a file", "missing", "required file is missing"))
            continue
        try:
            data = read_json_file(path, display=rel)
        except KfmError as error:
            failures.append(error_failure(error, file=rel))
            continue
        if name != PROV_SCHEMA:
            failures += schema_failures(
                schema_problems(data, schemas[name], schema_name=name), file=rel
            )
        elif prov_source is not None:
            failures += schema_failures(prov_json_problems(data, standards), file=rel)
    report = check_candidate(root)
    seen = {(f.file, f.field) for f in failures}
    for check in report.checks:
        if check.ok:
            continue
        info = check.error or {}
        failure = CiFailure(
            file=str(info.get("file") or check.name),
            field=str(info.get("field") or "-"),
            expected=str(info.get("expected") or "-"),
            found=str(info.get("found") or "-"),
            message=str(info.get("message") or check.detail),
        )
        if (failure.file, failure.field) not in seen:
            failures.append(failure)
    return CiCheck(
        id="metadata-schema",
        title="Deployment metadata schema",
        measured=f"{len(targets)} JSON files against their schemas (PROV-JSON: "
        f"{prov_source or 'not loaded'}); {len(report.checks)} loader checks",
        failures=tuple(failures),
    )


# --------------------------------------------------------------------------- STAC item
def stac_item_check(
    item: Any,
    *,
    item_file: str,
    roots: Sequence[Path],
    standards: Path | None = None,
    built: bool = False,
) -> CiCheck:
    """STAC core + every listed extension, the ``kfm:`` one included (offline: pystac's validator
    over the packaged schemas, or those of ``standards``) + asset files."""

    title = "STAC item correctness"
    if not isinstance(item, dict):
        return CiCheck(
            "stac-item",
            title,
            "nothing",
            (CiFailure(item_file, "-", "a STAC Item object", type(item).__name__),),
        )
    failures: list[CiFailure] = []
    notes: list[str] = []
    if built:
        notes.append("the candidate has no stac/model-item.json: built with the describe stage")
    extensions = [e for e in item.get("stac_extensions", []) if isinstance(e, str)]
    mlm = [e for e in extensions if e.startswith(MLM_PREFIX)]
    if not mlm:
        failures.append(
            CiFailure(item_file, "stac_extensions", f"an MLM schema URL ({MLM_PREFIX}...)", "none")
        )
    if KFM_EXTENSION_URI not in extensions:
        failures.append(
            CiFailure(item_file, "stac_extensions", KFM_EXTENSION_URI, short(extensions))
        )
    try:
        source = load_standards(standards).source
    except KfmError as error:
        failures.append(standards_failure(error, standards))
        measured = "nothing: the standards folder could not be read"
    else:
        for problem in stac_problems(item, standards):
            failures.append(
                CiFailure(
                    item_file,
                    problem.field,
                    f"valid against {problem.schema}",
                    short(problem.message, 300),
                    "STAC schema violation",
                )
            )
        measured = (
            f"STAC {item.get('stac_version')} core + {len(extensions)} extension schemas "
            f"(offline: {source}; kfm: generated)"
        )
    asset_findings = check_item_assets(item, list(roots))
    for finding in asset_findings:
        failures.append(
            CiFailure(
                item_file,
                f"assets.{finding.subject}",
                "the file present with matching file:checksum and file:size",
                finding.message,
                "asset",
            )
        )
    measured += f"; {len(item.get('assets') or {})} assets re-hashed"
    return CiCheck("stac-item", title, measured, tuple(failures), tuple(notes))


# --------------------------------------------------------------------------- gates
def gate_check(
    check_id: str,
    title: str,
    gate_ids: Sequence[str],
    candidate: Any,
    policy: Any,
    regions: Any,
    *,
    files: Mapping[str, str],
    extra: Callable[[], list[CiFailure]] | None = None,
) -> CiCheck:
    """Run the named gates of the policy (the gate stage's own classes) as one CI check.

    ``candidate`` is a :class:`core.candidate.load.Candidate` or an object with the same attributes
    the gates read (see :mod:`core.ci.version`).
    """
    from core.gates import GATES, GateContext

    failures: list[CiFailure] = []
    measured: list[str] = []
    ctx = GateContext(candidate=candidate, policy=policy, regions=regions)
    for gate_id in gate_ids:
        file = files.get(gate_id, "-")
        table = policy.gates.get(gate_id)
        if table is None:
            failures.append(
                CiFailure(policy.source, f"gates.{gate_id}", "a threshold table", "none")
            )
            continue
        try:
            result = GATES[gate_id](table, source=policy.source).evaluate(ctx)
        except KfmError as error:
            failures.append(error_failure(error, file=policy.source))
            continue
        if result.status == "error":
            info = result.error or {}
            failures.append(
                CiFailure(
                    str(info.get("file") or file),
                    str(info.get("field") or gate_id),
                    str(info.get("expected") or "the gate to run"),
                    str(info.get("found") or info.get("error") or "-"),
                    f"gate {gate_id} errored: {short(info.get('message', ''))}",
                )
            )
        for check in result.checks:
            measured.append(f"{check.metric}={check.measured:.4g}")
            if not check.passed:
                evidence = result.evidence.get(check.metric) or result.evidence.get("missing")
                found = f"{check.measured:.6g}" + (f" ({short(evidence)})" if evidence else "")
                failures.append(
                    CiFailure(
                        file,
                        check.metric,
                        f"{check.operator} {check.limit:.6g} (policy gates.{gate_id}.{check.key})",
                        found,
                        f"gate {gate_id}",
                    )
                )
    if extra is not None:
        failures += extra()
    return CiCheck(check_id, title, ", ".join(measured) or "nothing", tuple(failures))


def fair_failures(candidate: Any, *, metadata_file: str) -> list[CiFailure]:
    """FAIR basics the gates do not cover: licence, data licences, described, provenance."""
    md = candidate.metadata
    failures = []
    for field, value in (
        ("license", md.license),
        ("title", md.title),
        ("description", md.description),
    ):
        if not str(value).strip():
            failures.append(CiFailure(metadata_file, field, "a non-empty value (FAIR)", "empty"))
    for index, data in enumerate(md.training_data):
        if not data.license.strip():
            failures.append(
                CiFailure(
                    metadata_file,
                    f"training_data[{index}].license",
                    "the data licence (FAIR R1.1)",
                    "empty",
                )
            )
    return failures


# --------------------------------------------------------------------------- reproducibility
def tree_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative name."""
    if not root.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def compare_builds(
    first: Mapping[str, str], second: Mapping[str, str], *, prefix: str
) -> list[CiFailure]:
    """Files whose bytes differ between two builds (or exist in only one)."""
    failures = []
    for name in sorted(set(first) | set(second)):
        a, b = first.get(name, "missing"), second.get(name, "missing")
        if a != b:
            failures.append(
                CiFailure(
                    f"{prefix}{name}",
                    "sha256",
                    f"{a} (first build)",
                    f"{b} (second build)",
                    "not byte-identical on rebuild",
                )
            )
    return failures


def deployment_hash_check(first: Path, second: Path) -> CiCheck:
    """Sign-independent manifest digest of two stagings of the same inputs must be equal."""
    from core.signing.digests import compare_manifests, hash_directory

    a, b = hash_directory(first), hash_directory(second)
    failures = [
        CiFailure(d.name, "sha256", "the same file in both stagings", f"{d.kind}: {d.detail}")
        for d in compare_manifests(a, b)
    ]
    if a.digest != b.digest and not failures:
        failures.append(CiFailure("layout", "manifest digest", a.digest, b.digest))
    return CiCheck(
        "deployment-hash",
        "Repeatable deployment hash",
        f"manifest digest {a.digest[:16]}... over {len(a.files)} files (model.sig excluded), "
        f"second staging {b.digest[:16]}...",
        tuple(failures),
        details={"first": a.digest, "second": b.digest, "files": len(a.files)},
    )


def inference_check(
    run: Callable[[int], np.ndarray],
    *,
    threads: Iterable[int],
    tolerance: float,
    units: str,
    file: str,
) -> CiCheck:
    """Two runs at one thread must be bit-identical; other thread counts within ``tolerance``."""
    base = np.asarray(run(1), dtype=np.float64)
    again = np.asarray(run(1), dtype=np.float64)
    failures = []
    parts = [f"{base.size} outputs"]
    if base.size == 0:
        failures.append(CiFailure(file, "outputs", "at least one output", "none"))
    if not np.array_equal(base, again, equal_nan=True):
        diff = float(np.nanmax(np.abs(base - again))) if base.shape == again.shape else np.inf
        failures.append(
            CiFailure(
                file,
                "outputs (1 thread, run 2)",
                "bit-identical to run 1",
                f"max |diff| {diff:.3g}",
            )
        )
    else:
        parts.append("repeat at 1 thread bit-identical")
    worst = 0.0
    for count in threads:
        if count == 1:
            continue
        other = np.asarray(run(count), dtype=np.float64)
        diff = float(np.nanmax(np.abs(base - other))) if other.shape == base.shape else np.inf
        worst = max(worst, diff)
        if not diff <= tolerance:
            failures.append(
                CiFailure(
                    file,
                    f"outputs ({count} threads)",
                    f"max |diff| <= {tolerance:g} {units} (--inference-tolerance)",
                    f"{diff:.6g} {units}",
                    "thread count changes the outputs",
                )
            )
    parts.append(f"max |diff| across thread counts {worst:.3g} {units} (tolerance {tolerance:g})")
    return CiCheck(
        "inference",
        "Inference determinism",
        "; ".join(parts),
        tuple(failures),
        details={"max_abs_diff": worst, "tolerance": tolerance, "units": units},
    )


def stored_comparisons(stored: Path, fresh: Path, layout: str, describe: str) -> list[CiCheck]:
    """Deployment hash and rebuild of one fresh staging against the stored version."""
    deployment = deployment_hash_check(stored, fresh / layout)
    deployment = replace(
        deployment,
        measured=deployment.measured.replace("second staging", "fresh staging"),
    )
    failures: list[CiFailure] = []
    count = 0
    for name in (ITEM_FILE, PROVENANCE_FILE):
        first = {name: tree_digests(stored).get(name, "")}
        second = {name: tree_digests(fresh / describe).get(name, "")}
        failures += compare_builds(first, second, prefix="")
        count += 1
    a = tree_digests(stored / SOVEREIGNTY_DIR)
    b = tree_digests(fresh / layout / SOVEREIGNTY_DIR)
    failures += compare_builds(a, b, prefix="sovereignty/")
    count += len(a)
    rebuild = CiCheck(
        "rebuild",
        CHECK_TITLES["rebuild"],
        f"{count} stored describe and screen files rebuilt from the stored inputs in a fresh "
        "process, compared byte for byte",
        tuple(failures),
    )
    return [deployment, rebuild]
