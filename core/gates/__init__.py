"""Gates stage: every promotion gate, the registry of gate classes and the engine.

Each gate is a class with one method, ``evaluate(ctx) -> GateResult`` (``core/gates/base.py``
holds the shared checks). Its thresholds come from the policy's ``[gates.<gate-id>]`` table,
never from code. :func:`run_gates` evaluates the gates a policy names, in registry order, and
returns a :class:`GateReport`; promotion is blocked unless every gate passes (``error`` blocks
too), and a policy with zero gates is refused.

Modules: ``skill`` (accuracy, spatial_pattern, extremes, impact, on chunked dask statistics from
``core/gates/validation.py``), ``drift`` (``core/gates/drift_stats.py``), ``governance`` (cultural_safety,
sovereignty), ``evidence`` (xai, telemetry).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import PolicyError
from core.gates.base import Gate, GateContext, GateResult, Measurement, ProgressHook
from core.gates.drift import DriftGate
from core.gates.evidence import TelemetryGate, XaiGate
from core.gates.governance import CulturalSafetyGate, SovereigntyGate
from core.gates.skill import AccuracyGate, ExtremesGate, ImpactGate, SpatialPatternGate
from core.jsonio import canonical_json_bytes, write_json

if TYPE_CHECKING:
    from core.candidate.load import Candidate
    from core.policy import Policy
    from core.sovereignty.regions import RegionSet

__all__ = [
    "GATES",
    "Gate",
    "GateContext",
    "GateReport",
    "GateResult",
    "Measurement",
    "build_gates",
    "run_gates",
    "write_report",
]

REPORT_SCHEMA_VERSION = "1.0"

GATES: dict[str, type[Gate]] = {
    gate.id: gate
    for gate in (
        AccuracyGate,
        SpatialPatternGate,
        ExtremesGate,
        ImpactGate,
        DriftGate,
        CulturalSafetyGate,
        SovereigntyGate,
        XaiGate,
        TelemetryGate,
    )
}


def build_gates(policy: Policy) -> list[Gate]:
    """The gates a policy names, in registry order; unknown ids and keys are refused."""
    if not policy.gates:
        raise PolicyError(
            "a policy with no gates would let everything through",
            file=policy.source,
            field="gates",
            expected="at least one [gates.<gate-id>] table",
            found="none",
        )
    for gate_id in sorted(policy.gates):
        if gate_id not in GATES:
            raise PolicyError(
                "unknown gate id",
                file=policy.source,
                field=f"gates.{gate_id}",
                expected=list(GATES),
                found=gate_id,
            )
    return [
        cls(policy.gates[gid], source=policy.source)
        for gid, cls in GATES.items()
        if gid in policy.gates
    ]


@dataclass(frozen=True)
class GateReport:
    """Every gate's result for one candidate under one policy; ``passed`` only if all passed."""

    model: str
    version: str
    policy_version: str
    policy_sha256: str
    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def blocking(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def result(self, gate_id: str) -> GateResult:
        for r in self.results:
            if r.id == gate_id:
                return r
        raise KeyError(gate_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "model": self.model,
            "version": self.version,
            "policy": {"version": self.policy_version, "sha256": self.policy_sha256},
            "decision": "promotable" if self.passed else "blocked",
            "passed": self.passed,
            "blocking_gates": [r.id for r in self.blocking],
            "gates": [r.to_dict() for r in self.results],
        }


def _policy_digest(policy: Policy) -> str:
    path = Path(policy.source)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    data = policy.model_dump(mode="json", exclude={"source"})
    return hashlib.sha256(canonical_json_bytes(data)).hexdigest()


@contextmanager
def _client(scheduler: str | Any | None) -> Iterator[Any]:
    if scheduler is None or not isinstance(scheduler, str):
        yield scheduler
        return
    from distributed import Client

    from core.errors import InferenceError

    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as error:
        raise InferenceError(
            f"cannot reach the dask scheduler: {error}",
            field="scheduler",
            expected="a reachable dask.distributed scheduler address",
            found=scheduler,
        ) from error
    try:
        yield client
    finally:
        client.close()


def run_gates(
    candidate: Candidate,
    policy: Policy,
    *,
    regions: RegionSet | None = None,
    scheduler: str | Any | None = None,
    chunk_times: int | None = None,
    progress: ProgressHook | None = None,
) -> GateReport:
    """Evaluate every gate the policy names on the candidate.

    ``scheduler`` is a dask.distributed scheduler address (or a ``Client``); without it the
    chunked statistics run on local threads. ``progress(stage, done, total)`` is called as work
    advances. Raises :class:`PolicyError` for a malformed policy; a gate that crashes is reported
    with status ``error``.
    """
    gates = build_gates(policy)
    with _client(scheduler) as client:
        ctx = GateContext(
            candidate=candidate,
            policy=policy,
            regions=regions,
            client=client,
            chunk_times=chunk_times,
            progress=progress,
        )
        results = []
        for done, gate in enumerate(gates):
            if progress:
                progress(f"gate {gate.id}", done, len(gates))
            results.append(gate.evaluate(ctx))
        if progress:
            progress("gates", len(gates), len(gates))
    meta = candidate.metadata
    return GateReport(
        model=meta.name,
        version=meta.version,
        policy_version=policy.version,
        policy_sha256=_policy_digest(policy),
        results=tuple(results),
    )


def write_report(report: GateReport, path: Path) -> None:
    """Write ``gates.json`` (canonical JSON: the same report gives the same bytes)."""
    write_json(path, report.to_dict())
