"""The gate base class, its result and the context every gate reads.

A gate declares the policy keys it understands: thresholds (ending in ``_max`` or ``_min``,
compared with the measured value of the same name without the suffix) and parameters (anything
else, e.g. an index definition). The base class refuses unknown and missing keys with the gate's
name, runs the subclass's single :meth:`Gate.measure`, compares every threshold and turns any
exception into status ``error`` (which blocks promotion like a failure).
"""

from __future__ import annotations

import math
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from core.errors import KfmError, PolicyError
from core.gates.stats import compute_candidate_stats

if TYPE_CHECKING:
    from core.candidate.load import Candidate
    from core.gates.validation import ValidationStats
    from core.policy import Policy
    from core.sovereignty.regions import RegionSet

Status = Literal["pass", "fail", "error"]
Scalar = float | int | bool | str
# A measured value: one number, or one per record (``_max`` checks the largest, ``_min`` the
# smallest), or text/bool kept for the report.
Measured = Scalar | tuple[float, ...]
ProgressHook = Callable[[str, int, int], None]


def rounded(value: Any) -> Any:
    """Floats rounded to 6 significant decimals for stable, readable JSON; NaN/inf refused."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return float(f"{value:.6g}") if abs(value) >= 1e-3 or value == 0 else float(f"{value:.4e}")
    if isinstance(value, dict):
        return {str(k): rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


@dataclass(frozen=True)
class Check:
    """One threshold comparison: measured value against its limit."""

    key: str
    measured: float
    limit: float
    passed: bool

    @property
    def metric(self) -> str:
        return self.key.rsplit("_", 1)[0]

    @property
    def operator(self) -> str:
        return "<=" if self.key.endswith("_max") else ">="

    def message(self) -> str:
        return f"{self.metric} = {self.measured:.6g} (threshold {self.key} = {self.limit:.6g})"

    def to_dict(self) -> dict[str, Any]:
        return rounded(
            {
                "key": self.key,
                "metric": self.metric,
                "measured": self.measured,
                "operator": self.operator,
                "threshold": self.limit,
                "passed": self.passed,
            }
        )


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate: status, what was measured, against which thresholds, and why."""

    id: str
    title: str
    status: Status
    measured: dict[str, Measured]
    thresholds: dict[str, Scalar]
    checks: tuple[Check, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    error: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def failures(self) -> list[str]:
        """One line per failed threshold (or the error), naming measured value and threshold."""
        if self.status == "error" and self.error:
            return [f"error: {self.error.get('message', '')}"]
        return [c.message() for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "measured": rounded(self.measured),
            "thresholds": rounded(self.thresholds),
            "checks": [c.to_dict() for c in self.checks],
            "failures": self.failures,
            "evidence": rounded(self.evidence),
            "notes": list(self.notes),
            "error": self.error,
        }


@dataclass(frozen=True)
class Measurement:
    """What a gate's :meth:`Gate.measure` returns."""

    values: dict[str, Measured]
    evidence: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass
class GateContext:
    """What gates read: the candidate, the policy, optional regions, and shared computations.

    Expensive results (the chunked validation statistics, the drift report) are computed once,
    on first use, and shared; a failure is cached too, so every gate that needs it reports it.
    """

    candidate: Candidate
    policy: Policy
    regions: RegionSet | None = None
    client: Any = None
    chunk_times: int | None = None
    progress: ProgressHook | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def _cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = (True, compute())
            except Exception as error:  # cached and re-raised for every gate that needs it
                self._cache[key] = (False, error)
        ok, value = self._cache[key]
        if not ok:
            raise value
        return value

    def validation_stats(self) -> ValidationStats:
        stats: ValidationStats = self._cached(
            "validation",
            lambda: compute_candidate_stats(
                self.candidate,
                self.policy,
                client=self.client,
                chunk_times=self.chunk_times,
                progress=self.progress,
            ),
        )
        return stats


class Gate(ABC):
    """A promotion gate: shared policy checks here, one :meth:`measure` per subclass."""

    id: ClassVar[str]
    title: ClassVar[str]
    thresholds: ClassVar[Mapping[str, str]]  # key -> what the measured value is
    parameters: ClassVar[Mapping[str, type]] = {}  # key -> expected Python type

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for key in getattr(cls, "thresholds", {}):
            if not key.endswith(("_max", "_min")):
                raise TypeError(f"threshold key {key!r} of {cls.__name__} must end in _max or _min")
        for key in getattr(cls, "parameters", {}):
            if key.endswith(("_max", "_min")):
                raise TypeError(f"parameter {key!r} of {cls.__name__} looks like a threshold")

    def __init__(self, table: Mapping[str, Scalar], *, source: str = "<memory>") -> None:
        self.source = source
        known = set(self.thresholds) | set(self.parameters)
        for key in sorted(table):
            if key not in known:
                raise PolicyError(
                    f"unknown key for gate '{self.id}'",
                    file=source,
                    field=f"gates.{self.id}.{key}",
                    expected=sorted(known),
                    found=key,
                )
        for key in sorted(known):
            if key not in table:
                raise PolicyError(
                    f"gate '{self.id}' needs this key",
                    file=source,
                    field=f"gates.{self.id}.{key}",
                    expected=self.thresholds.get(key) or f"a {self.parameters[key].__name__}",
                    found="nothing",
                )
        for key in sorted(self.thresholds):
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PolicyError(
                    f"threshold of gate '{self.id}' must be a number",
                    file=source,
                    field=f"gates.{self.id}.{key}",
                    expected="a number",
                    found=value,
                )
        for key, kind in sorted(self.parameters.items()):
            value = table[key]
            ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                raise PolicyError(
                    f"parameter of gate '{self.id}' has the wrong type",
                    file=source,
                    field=f"gates.{self.id}.{key}",
                    expected=kind.__name__,
                    found=value,
                )
        self.table: dict[str, Scalar] = dict(table)

    def param(self, key: str) -> Any:
        return self.table[key]

    @abstractmethod
    def measure(self, ctx: GateContext) -> Measurement:
        """Measure what the thresholds are compared against (keys without ``_max``/``_min``)."""

    def evaluate(self, ctx: GateContext) -> GateResult:
        """Measure, compare every threshold, and report; an exception becomes status ``error``."""
        limits = {k: self.table[k] for k in sorted(self.thresholds)}
        try:
            m = self.measure(ctx)
            checks = []
            for key in sorted(self.thresholds):
                metric = key.rsplit("_", 1)[0]
                if metric not in m.values:
                    raise KfmError(f"gate '{self.id}' did not measure '{metric}'", field=key)
                raw = m.values[metric]
                if isinstance(raw, tuple):
                    if not raw:
                        raise KfmError(
                            f"gate '{self.id}' measured no value of '{metric}'", field=key
                        )
                    measured = float(max(raw) if key.endswith("_max") else min(raw))
                else:
                    measured = float(raw)
                limit = float(self.table[key])
                if not math.isfinite(measured):
                    passed = False
                elif key.endswith("_max"):
                    passed = measured <= limit
                else:
                    passed = measured >= limit
                checks.append(Check(key=key, measured=measured, limit=limit, passed=passed))
        except Exception as error:
            info = (
                error.to_dict()
                if isinstance(error, KfmError)
                else {
                    "error": type(error).__name__,
                    "message": str(error) or type(error).__name__,
                    "where": traceback.format_exception(error)[-2].strip()[:300],
                }
            )
            return GateResult(
                id=self.id,
                title=self.title,
                status="error",
                measured={},
                thresholds=dict(limits),
                error=info,
            )
        status: Status = "pass" if all(c.passed for c in checks) else "fail"
        return GateResult(
            id=self.id,
            title=self.title,
            status=status,
            measured=dict(m.values),
            thresholds=dict(limits),
            checks=tuple(checks),
            evidence=m.evidence,
            notes=m.notes,
        )
