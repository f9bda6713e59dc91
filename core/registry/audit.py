"""Everything a registry version holds, verified against one trusted pipeline key.

A version's files are signed twice, by the pipeline key, at two stages of ``kfm deploy``:

- ``model.sig`` (OpenSSF model-signing bundle, :mod:`core.signing.bundle`) covers the
  candidate's own files, signed before the deployment outputs existed;
- the version record (``climate/index/<version>.json``, :mod:`core.registry.records`) covers
  every stored file, the deployment outputs (``gates.json``, ``model.stac.json``,
  ``provenance.json``, ``sovereignty/*``) included.

:func:`audit_version` checks both, so no stored file is left unchecked: the record's signature
and every file's digest (:meth:`core.registry.versions.Registry.verify`), then ``model.sig`` on a
copy of the candidate's files (every stored file but the deployment outputs, which the record
alone covers).
``kfm verify --version V`` and ``kfm verify <registry>/climate/models/V`` print its report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from core.registry.layout import DEPLOY_OUTPUTS, SIGNATURE_FILE, index_key
from core.registry.versions import Registry
from core.signing.bundle import Check, VerificationReport, check_model


def candidate_files(names: list[str]) -> list[str]:
    """The files ``model.sig`` covers: every stored file but the deployment outputs and itself."""
    return [n for n in names if n.split("/", 1)[0] not in DEPLOY_OUTPUTS and n != SIGNATURE_FILE]


def audit_version(registry: Registry, version: str) -> VerificationReport:
    """Every check on a registry version (see the module docstring), each one reported."""
    where = index_key(version)
    checks: list[Check] = []
    report = registry.verify(version)
    if report.checked == 0 and report.problems:  # the record itself does not verify
        detail = report.problems[0].split(": ", 1)[-1]
        checks.append(Check(name="record", status="failed", file=where, detail=detail))
        return VerificationReport(path=f"{registry.location}/{where}", checks=tuple(checks))
    record = registry.show(version)
    checks.append(
        Check(
            name="record",
            status="ok",
            file=where,
            detail=f"signed by the pipeline key; lists {len(record.manifest.files)} files",
        )
    )
    for problem in report.problems:
        name, _, detail = problem.partition(": ")
        checks.append(Check(name="stored files", status="failed", file=name, detail=detail))
    if not report.problems:
        names = [f.name for f in record.manifest.files]
        outside = sorted(set(names) - set(candidate_files(names)) - {SIGNATURE_FILE})
        checks.append(
            Check(
                name="stored files",
                status="ok",
                file=".",
                detail=f"all {report.checked} stored files match the signed record; "
                f"{len(outside)} deployment outputs are covered by it alone "
                f"({', '.join(outside)}), the others by model.sig too",
            )
        )
        with tempfile.TemporaryDirectory(prefix="kfm-audit-") as tmp:
            copy = Path(tmp) / version
            for name in [*candidate_files(names), SIGNATURE_FILE]:
                target = copy / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(registry.read_file(version, name))
            signed = check_model(copy, public_key=registry.pipeline_key)
        checks.extend(c.model_copy(update={"name": f"model.sig {c.name}"}) for c in signed.checks)
    return VerificationReport(
        path=f"{registry.location}/{where}",
        checks=tuple(checks),
        manifest=record.manifest,
    )
