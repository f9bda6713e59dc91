"""The describe checks: the item and the lineage against the standard schemas (offline, through
:mod:`core.describe.validate`), and what schemas cannot check: files against checksums, time
order, PROV consistency.

Each check returns a list of :class:`Finding` (empty = passed) so ``kfm describe`` and
``kfm ci`` can report every problem at once; :func:`require` turns findings into one
:class:`core.errors.DescribeError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from prov.model import (
    ProvActivity,
    ProvCommunication,
    ProvDerivation,
    ProvDocument,
    ProvGeneration,
    ProvUsage,
)

from core.describe.extension import kfm_field_errors
from core.describe.lineage import prov_json
from core.describe.validate import prov_json_problems, stac_problems
from core.errors import DescribeError, KfmError
from core.signing.digests import sha256_file

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Finding:
    """One failed check: which check, about what, and what is wrong."""

    check: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "subject": self.subject, "message": self.message}


# --------------------------------------------------------------------------- STAC item
def check_item_assets(item: Mapping[str, Any], roots: Path | Sequence[Path]) -> list[Finding]:
    """Every asset href is relative, inside the item's directory, and names a file present in
    one of ``roots`` (first match wins) whose size and SHA-256 match ``file:size`` and
    ``file:checksum``."""
    search = [roots] if isinstance(roots, Path) else list(roots)
    findings = []
    assets = item.get("assets") or {}
    if not assets:
        findings.append(Finding("assets", "item", "the item has no assets"))
    for key, asset in sorted(assets.items()):
        href = str(asset.get("href", ""))
        rel = _relative(href)
        if rel is None:
            findings.append(
                Finding(
                    "assets",
                    key,
                    f"href '{href}' is not a relative path inside the item's directory",
                )
            )
            continue
        path = next((root / rel for root in search if (root / rel).is_file()), None)
        if path is None:
            findings.append(Finding("assets", key, f"file '{rel}' is missing"))
            continue
        checksum, size = asset.get("file:checksum"), asset.get("file:size")
        if checksum is None or size is None:
            findings.append(Finding("assets", key, "file:checksum and file:size are required"))
            continue
        try:
            digest = sha256_file(path, name=rel)
        except KfmError as error:
            findings.append(Finding("assets", key, error.diagnostics()))
            continue
        if digest.multihash != checksum:
            findings.append(
                Finding(
                    "assets", key, f"file:checksum {checksum} but '{rel}' has {digest.multihash}"
                )
            )
        if digest.size != size:
            findings.append(
                Finding("assets", key, f"file:size {size} but '{rel}' has {digest.size} bytes")
            )
    return findings


def _relative(href: str) -> str | None:
    if not href or urlparse(href).scheme or href.startswith("/"):
        return None
    path = PurePosixPath(href)
    if ".." in path.parts or "\\" in href:
        return None
    return path.as_posix()


def check_item_extension(item: Mapping[str, Any]) -> list[Finding]:
    """The item's ``kfm:`` fields follow the project extension schema."""
    return [Finding("kfm-extension", "item", problem) for problem in kfm_field_errors(item)]


def check_item_schemas(item: Mapping[str, Any]) -> list[Finding]:
    """The item is valid against STAC core and every schema it lists in ``stac_extensions``
    (the ``kfm:`` extension included), all preloaded from package data."""
    return [
        Finding("stac-schema", p.schema, f"{p.field}: {p.message}") for p in stac_problems(item)
    ]


# --------------------------------------------------------------------------- PROV
def check_prov_json_schema(doc: ProvDocument) -> list[Finding]:
    """The document's PROV-JSON serialization is valid against the W3C PROV-JSON schema."""
    problems = prov_json_problems(json.loads(prov_json(doc)))
    return [Finding("prov-json-schema", p.field, p.message) for p in problems]


def check_prov_unified(doc: ProvDocument) -> list[Finding]:
    """``doc.unified()`` merges the records without a conflict."""
    try:
        doc.unified()
    except Exception as error:  # prov raises its own errors for conflicting records
        return [Finding("prov-unified", "document", f"{type(error).__name__}: {error}")]
    return []


def check_prov_order(doc: ProvDocument) -> list[Finding]:
    """Times are timezone-aware and ordered: every activity ends after it starts; relation
    times fall within their activity; nothing is used before it is generated; a derived entity
    is not generated before its source; an informed activity does not end before its informant
    starts. A relation without a time is bounded by its activity's times."""
    doc = doc.flattened()
    findings: list[Finding] = []
    spans: dict[str, Interval] = {}
    for record in doc.get_records(ProvActivity):
        assert isinstance(record, ProvActivity)
        name = str(record.identifier)
        start, end = record.get_startTime(), record.get_endTime()
        for label, moment in (("start", start), ("end", end)):
            if moment is not None and moment.tzinfo is None:
                findings.append(
                    Finding("prov-order", name, f"{label} time {moment} has no timezone")
                )
        if start is not None and end is not None and start.tzinfo and end.tzinfo:
            if end < start:
                findings.append(
                    Finding(
                        "prov-order",
                        name,
                        f"ends at {end.isoformat()} before it starts at {start.isoformat()}",
                    )
                )
            spans[name] = (start, end)
        elif start is not None and start.tzinfo:
            spans[name] = (start, start)
    generated: dict[str, list[tuple[str, Interval]]] = {}
    for record in doc.get_records(ProvGeneration):
        entity, activity, when = record.args[0], record.args[1], record.args[2]
        interval = _interval(findings, str(record.identifier), spans, activity, when)
        if interval is not None and entity is not None:
            generated.setdefault(str(entity), []).append((str(record.identifier), interval))
    for entity, generations in sorted(generated.items()):
        if len(generations) > 1:
            findings.append(
                Finding(
                    "prov-order",
                    entity,
                    "generated more than once: " + ", ".join(g for g, _ in generations),
                )
            )
    for record in doc.get_records(ProvUsage):
        activity, entity, when = record.args[0], record.args[1], record.args[2]
        used = _interval(findings, str(record.identifier), spans, activity, when)
        for generation, made in generated.get(str(entity), []):
            if used is not None and made[0] > used[1]:
                findings.append(
                    Finding(
                        "prov-order",
                        str(record.identifier),
                        f"{entity} is used at {used[1].isoformat()}, before it "
                        f"is generated at {made[0].isoformat()} ({generation})",
                    )
                )
    for record in doc.get_records(ProvDerivation):
        derived, source = str(record.args[0]), str(record.args[1])
        for _, made in generated.get(derived, []):
            for _, source_made in generated.get(source, []):
                if source_made[0] > made[1]:
                    findings.append(
                        Finding(
                            "prov-order",
                            str(record.identifier),
                            f"{derived} is generated before its source {source}",
                        )
                    )
    for record in doc.get_records(ProvCommunication):
        informed, informant = str(record.args[0]), str(record.args[1])
        if informed in spans and informant in spans and spans[informant][0] > spans[informed][1]:
            findings.append(
                Finding(
                    "prov-order",
                    str(record.identifier),
                    f"{informed} ends before its informant {informant} starts",
                )
            )
    return findings


def _interval(
    findings: list[Finding], relation: str, spans: Mapping[str, Interval], activity: Any, when: Any
) -> Interval | None:
    span = spans.get(str(activity)) if activity is not None else None
    if isinstance(when, datetime):
        if when.tzinfo is None:
            findings.append(Finding("prov-order", relation, f"time {when} has no timezone"))
            return None
        if span is not None and not span[0] <= when <= span[1]:
            findings.append(
                Finding(
                    "prov-order",
                    relation,
                    f"time {when.isoformat()} is outside "
                    f"its activity {activity} ({span[0].isoformat()} .. "
                    f"{span[1].isoformat()})",
                )
            )
        return (when, when)
    return span


# --------------------------------------------------------------------------- together
def describe_findings(
    item: Mapping[str, Any], doc: ProvDocument, roots: Path | Sequence[Path]
) -> list[Finding]:
    """Every describe check on an item, its lineage and the files they name."""
    return [
        *check_item_schemas(item),
        *check_item_assets(item, roots),
        *check_prov_json_schema(doc),
        *check_prov_unified(doc),
        *check_prov_order(doc),
    ]


def require(findings: Iterable[Finding], *, file: str | None = None) -> None:
    """Raise one :class:`DescribeError` listing every finding (nothing when there are none)."""
    found = list(findings)
    if found:
        raise DescribeError(
            f"{len(found)} describe check(s) failed: " + "; ".join(str(f) for f in found[:10]),
            file=file,
            field=found[0].subject,
            expected="no findings",
            found=str(found[0]),
        )
