"""What ``kfm ci`` reports: one :class:`CiCheck` per specification item, as a table, JSON or JUnit.

A check passes only when it ran and found nothing wrong; each :class:`CiFailure` names the file,
the field, what was expected and what was found, so a CI log points straight at the problem.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from core.errors import KfmError

# The specification's CI checks, in the order they are reported.
CHECK_TITLES: dict[str, str] = {
    "metadata-schema": "Deployment metadata schema",
    "stac-item": "STAC item correctness",
    "xai": "XAI completeness",
    "telemetry": "Telemetry completeness",
    "fair-care": "FAIR+CARE compliance",
    "sovereignty": "Sovereignty boundary safety",
    "deployment-hash": "Repeatable deployment hash",
    "rebuild": "Rebuild reproducibility",
    "inference": "Inference determinism",
}


class CiError(KfmError):
    """``kfm ci`` cannot run at all (no such version, unreadable options)."""


@dataclass(frozen=True)
class CiFailure:
    """One reason a check failed: where (file, field), expected versus found."""

    file: str
    field: str
    expected: str
    found: str
    message: str = ""

    def __str__(self) -> str:
        lead = f"{self.message}: " if self.message else ""
        return (
            f"{lead}{self.file}: field '{self.field}': expected {self.expected}, found {self.found}"
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "file": self.file,
            "field": self.field,
            "expected": self.expected,
            "found": self.found,
            "message": self.message,
        }

    @classmethod
    def from_error(cls, error: KfmError, *, file: str = "", message: str = "") -> CiFailure:
        """A failure from an engine error, keeping its file, field, expected and found."""
        data = error.to_dict()
        return cls(
            file=str(data.get("file") or file or "-"),
            field=str(data.get("field") or "-"),
            expected=str(data.get("expected") if data.get("expected") is not None else "-"),
            found=str(data.get("found") if data.get("found") is not None else "-"),
            message=message or error.message,
        )


@dataclass(frozen=True)
class CiCheck:
    """The outcome of one CI check: what it measured and, if it failed, why."""

    id: str
    title: str
    measured: str
    failures: tuple[CiFailure, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "passed": self.passed,
            "measured": self.measured,
            "failures": [f.to_dict() for f in self.failures],
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "details": self.details,
        }


@dataclass(frozen=True)
class CiReport:
    """Every check run on one target (a candidate directory or a registry version)."""

    target: str
    checks: tuple[CiCheck, ...]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[CiCheck]:
        return [c for c in self.checks if not c.passed]

    def check(self, check_id: str) -> CiCheck:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "passed": self.passed,
            "failed": [c.id for c in self.failed],
            "checks": [c.to_dict() for c in self.checks],
        }

    def junit_xml(self) -> str:
        """JUnit XML: one ``testcase`` per check; a ``failure`` element per failed check."""
        suite = ET.Element(
            "testsuite",
            {
                "name": "kfm ci",
                "tests": str(len(self.checks)),
                "failures": str(len(self.failed)),
                "errors": "0",
                "skipped": "0",
                "time": f"{sum(c.seconds for c in self.checks):.3f}",
            },
        )
        ET.SubElement(
            ET.SubElement(suite, "properties"), "property", {"name": "target", "value": self.target}
        )
        for check in self.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                {"classname": "kfm.ci", "name": check.id, "time": f"{check.seconds:.3f}"},
            )
            out = ET.SubElement(case, "system-out")
            out.text = f"{check.title}: {check.measured}"
            if check.failures:
                failure = ET.SubElement(
                    case,
                    "failure",
                    {"message": str(check.failures[0]), "type": f"kfm.ci.{check.id}"},
                )
                failure.text = "\n".join(str(f) for f in check.failures)
        ET.indent(suite)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, "unicode") + "\n"
