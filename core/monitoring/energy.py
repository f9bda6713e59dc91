"""Energy and carbon of a run, estimated with the Green Algorithms model.

Green Algorithms (Lannelongue, Grealey & Inouye, Adv. Sci. 2021, doi:10.1002/advs.202100707):
``energy = t × (n_cores × P_core × usage + memory_GB × 0.3725 W) × PUE``, and
``emissions = energy × grid carbon intensity``. The defaults below are the paper's defaults.
The estimate is deterministic: the same assumed hardware and duration give the same figures, so
candidates rebuild byte for byte. Figures are labelled ``estimated``; a measured figure (from a
power meter or CodeCarbon with RAPL) is labelled ``measured`` and kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.candidate.models import Hardware, Telemetry

WATTS_PER_MEMORY_GB = 0.3725  # Green Algorithms, memory power per GB
DEFAULT_WATTS_PER_CORE = 12.0  # Green Algorithms default for an unknown CPU core
DEFAULT_PUE = 1.67  # Green Algorithms default data-centre PUE (Uptime Institute 2019 average)
DEFAULT_GRID_G_PER_KWH = 475.0  # Green Algorithms world-average carbon intensity


@dataclass(frozen=True)
class EnergyAssumptions:
    """What an estimate assumes about the machine and the grid."""

    cores: int = 1
    watts_per_core: float = DEFAULT_WATTS_PER_CORE
    core_usage: float = 1.0
    memory_gb: float = 4.0
    pue: float = DEFAULT_PUE
    grid_intensity_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH
    location: str = "WORLD (Green Algorithms average)"
    cpu: str = "generic x86-64 core (Green Algorithms default)"


def estimate_energy_kwh(duration_s: float, a: EnergyAssumptions) -> float:
    """Energy in kWh of a run of ``duration_s`` seconds under assumptions ``a``."""
    power_w = a.cores * a.watts_per_core * a.core_usage + a.memory_gb * WATTS_PER_MEMORY_GB
    return duration_s / 3600.0 * power_w * a.pue / 1000.0


def estimate_run(
    run_id: str,
    kind: str,
    duration_s: float,
    a: EnergyAssumptions | None = None,
    notes: tuple[str, ...] = (),
) -> Telemetry:
    """A ``Telemetry`` record for a run, estimated with Green Algorithms (rounded for stability)."""
    a = a or EnergyAssumptions()
    energy = estimate_energy_kwh(duration_s, a)
    emissions = energy * a.grid_intensity_g_per_kwh / 1000.0
    return Telemetry(
        schema_version="1.0",
        run_id=run_id,
        kind=kind,  # type: ignore[arg-type]
        method="estimated",
        estimator="green-algorithms-v2",
        energy_kwh=round(energy, 12),
        emissions_kg_co2e=round(emissions, 12),
        duration_s=round(duration_s, 6),
        hardware=Hardware(cpu=a.cpu, cores=a.cores, memory_gb=a.memory_gb),
        grid_intensity_g_per_kwh=a.grid_intensity_g_per_kwh,
        pue=a.pue,
        location=a.location,
        notes=notes,
    )
