"""The versioned policy file (``governance/policy.toml``).

Thresholds never live in code: every gate reads its ``[gates.<gate-id>]`` table from here, the
sovereignty screen reads ``[screening]`` and the decision rules read ``[decisions]``. This module
parses and checks the file's shape; each gate checks its own keys against the thresholds it
declares (see ``core/gates``), so an unknown key or gate id is refused there with its name.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import PolicyError
from core.resources import DEFAULT_POLICY_PATH

TIERS = ("internal", "public-generalized", "restricted", "withheld")
# What a reviewer looks at before deciding: the gates, the model card, the lineage, the screen.
DEFAULT_DECISION_EVIDENCE: tuple[str, ...] = (
    "gates.json",
    "model.stac.json",
    "provenance.json",
    "sovereignty/report.json",
)


class ScreeningPolicy(BaseModel):
    """How model outputs inside steward regions are generalized (sovereignty stage)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resolution_internal: int = Field(9, ge=0, le=15)
    resolution_public_generalized: int = Field(5, ge=0, le=15)
    resolution_restricted: int = Field(4, ge=0, le=15)
    min_count: int = Field(11, ge=1)
    withheld_buffer_rings: int = Field(1, ge=0, le=10)

    def resolution_for(self, tier: str) -> int | None:
        """H3 resolution a tier publishes at; ``None`` for ``withheld`` (nothing published)."""
        if tier == "withheld":
            return None
        table = {
            "internal": self.resolution_internal,
            "public-generalized": self.resolution_public_generalized,
            "restricted": self.resolution_restricted,
        }
        if tier not in table:
            raise PolicyError("unknown tier", field="tier", expected=list(TIERS), found=tier)
        return table[tier]

    @property
    def buffer_resolution(self) -> int:
        """H3 resolution the withheld buffer's rings are counted at: the coarsest tier's, so no
        published cell of any tier touches withheld land."""
        return min(
            self.resolution_internal, self.resolution_public_generalized, self.resolution_restricted
        )


class DecisionPolicy(BaseModel):
    """Who must agree before a version is promoted (decision stage)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    council_quorum: int = Field(2, ge=1)
    require_concerned_stewards: bool = True
    require_working_group_drift_signoff: bool = False
    forbid_self_approval: bool = True
    clock_skew_seconds: int = Field(
        600,
        ge=0,
        description="How far a record's signed time may be from when the ledger recorded it",
    )
    evidence: tuple[str, ...] = Field(
        DEFAULT_DECISION_EVIDENCE,
        min_length=1,
        description="Registry files of a version whose SHA-256 a reviewer's decision records",
    )

    @field_validator("evidence")
    @classmethod
    def _evidence_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            parts = name.split("/")
            if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise ValueError(f"evidence names a file inside a version, got {name!r}")
        if len(set(value)) != len(value):
            raise ValueError(f"evidence names a file twice: {sorted(value)}")
        return value


class MonitoringPolicy(BaseModel):
    """What a production batch may do before the engine rolls the version back (monitoring stage).

    Production tolerances are stricter than the validation gate's: the gate compares held-out
    data of the training season, while a production batch that moves by a "moderate" shift
    (Siddiqi 2006: PSI 0.1-0.25) is already outside what the version was validated on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    psi_max: float = Field(0.1, gt=0)
    ks_statistic_max: float = Field(0.1, gt=0, le=1)
    wasserstein_std_max: float = Field(0.15, gt=0)
    psi_bins: int = Field(10, ge=2)
    sample_rows: int = Field(200_000, ge=100)
    energy_kwh_per_million_predictions_max: float = Field(0.001, gt=0)
    xai_sample: int = Field(64, ge=8)
    chunk_times: int = Field(8, ge=1)

    def drift_limits(self) -> dict[str, float]:
        return {
            "psi": self.psi_max,
            "ks_statistic": self.ks_statistic_max,
            "wasserstein_std": self.wasserstein_std_max,
        }


class Policy(BaseModel):
    """A parsed policy file: its version, raw gate tables, screening and decision rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    source: str = "<memory>"
    gates: dict[str, dict[str, float | int | bool | str]]
    screening: ScreeningPolicy = ScreeningPolicy()
    decisions: DecisionPolicy = DecisionPolicy()
    monitoring: MonitoringPolicy = MonitoringPolicy()

    def gate_table(self, gate_id: str) -> dict[str, float | int | bool | str]:
        return self.gates.get(gate_id, {})


def load_policy(path: Path | str | None = None) -> Policy:
    """Read and check a policy file; the default is ``governance/policy.toml``."""
    file = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise PolicyError("policy file not found", file=str(file)) from error
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"not valid TOML: {error}", file=str(file)) from error
    return policy_from_dict(raw, source=str(file))


def policy_from_dict(raw: dict[str, Any], *, source: str = "<memory>") -> Policy:
    """Build a policy from already-parsed TOML data, refusing empty or malformed tables."""
    unknown = sorted(set(raw) - {"version", "gates", "screening", "decisions", "monitoring"})
    if unknown:
        raise PolicyError(
            "unknown top-level table",
            file=source,
            field=unknown[0],
            expected="version, gates, screening, decisions, monitoring",
            found=unknown[0],
        )
    if "version" not in raw:
        raise PolicyError("policy has no version", file=source, field="version")
    gates = raw.get("gates")
    if not isinstance(gates, dict) or not gates:
        raise PolicyError(
            "a policy with no gates would let everything through",
            file=source,
            field="gates",
            expected="at least one [gates.<gate-id>] table",
            found="none",
        )
    for gate_id, table in gates.items():
        if not isinstance(table, dict):
            raise PolicyError(
                "gate entry must be a table",
                file=source,
                field=f"gates.{gate_id}",
                expected="table",
                found=type(table).__name__,
            )
        for key, value in table.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise PolicyError(
                    "threshold must be finite",
                    file=source,
                    field=f"gates.{gate_id}.{key}",
                    expected="a finite number",
                    found=value,
                )
    try:
        return Policy(
            version=str(raw["version"]),
            source=source,
            gates=gates,
            # Tables as data, so a refusal names the table too (``decisions.evidence``).
            screening=raw.get("screening", {}),
            decisions=raw.get("decisions", {}),
            monitoring=raw.get("monitoring", {}),
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise PolicyError(
            first["msg"],
            file=source,
            field=".".join(str(p) for p in first["loc"]),
            found=first.get("input"),
        ) from error
