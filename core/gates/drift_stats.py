"""Input drift between a reference matrix (training data) and a batch, per feature.

Effect sizes, not p-values: at a million rows every KS p-value is ~0, so a drift verdict rests on
the Population Stability Index over the reference's quantile bins, the two-sample
Kolmogorov-Smirnov statistic (the largest gap between the two CDFs) and the 1-Wasserstein distance
(in the feature's units, and divided by the reference's standard deviation so one threshold fits
every feature). Large inputs are subsampled with a seeded generator, so a report is reproducible.

The validation gate (``core/gates``) and production monitoring call the same
:func:`drift_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from core.errors import GateError

PSI_EPSILON = 1e-4  # floor on bin shares, so an empty bin gives a large but finite PSI


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature between the reference and the batch."""

    name: str
    psi: float
    ks_statistic: float
    wasserstein: float
    wasserstein_std: float
    reference_mean: float
    batch_mean: float
    reference_std: float
    batch_std: float
    bins: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift and the sizes it was computed on."""

    features: tuple[FeatureDrift, ...]
    n_reference: int
    n_batch: int
    n_reference_used: int
    n_batch_used: int
    seed: int

    def max_of(self, metric: str) -> float:
        """The largest value of ``metric`` (psi, ks_statistic, wasserstein_std) over features."""
        return max(float(getattr(f, metric)) for f in self.features)

    def worst(self, metric: str) -> str:
        """The name of the feature with the largest ``metric``."""
        return max(self.features, key=lambda f: float(getattr(f, metric))).name

    def breaches(self, limits: dict[str, float]) -> list[str]:
        """Human-readable breaches of ``{metric: maximum}`` limits, one per feature and metric."""
        out = []
        for f in self.features:
            for metric, limit in sorted(limits.items()):
                value = float(getattr(f, metric))
                if value > limit:
                    out.append(f"{f.name}: {metric} {value:.4g} > {limit:.4g}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_reference": self.n_reference,
            "n_batch": self.n_batch,
            "n_reference_used": self.n_reference_used,
            "n_batch_used": self.n_batch_used,
            "seed": self.seed,
            "features": [f.to_dict() for f in self.features],
        }


def subsample(matrix: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_rows`` rows, drawn without replacement (kept in their original order)."""
    if matrix.shape[0] <= max_rows:
        return matrix
    idx = np.sort(rng.choice(matrix.shape[0], size=max_rows, replace=False))
    return matrix[idx]


def psi(reference: np.ndarray, batch: np.ndarray, bins: int = 10) -> tuple[float, int]:
    """Population Stability Index on the reference's quantile bins; returns (psi, bins used).

    Repeated quantile edges (discrete or constant features) are merged, so a feature taking four
    values is compared on four categories.
    """
    qs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    edges = np.unique(np.quantile(reference, qs, method="inverted_cdf"))
    edges = edges[edges < reference.max()]  # bins are (e_i, e_i+1]; none may be empty by design
    ref_idx = np.searchsorted(edges, reference, side="left")
    bat_idx = np.searchsorted(edges, batch, side="left")
    n_bins = edges.size + 1
    ref_share = np.bincount(ref_idx, minlength=n_bins) / reference.size
    bat_share = np.bincount(bat_idx, minlength=n_bins) / batch.size
    ref_share = np.maximum(ref_share, PSI_EPSILON)
    bat_share = np.maximum(bat_share, PSI_EPSILON)
    value = float(np.sum((bat_share - ref_share) * np.log(bat_share / ref_share)))
    return value, int(n_bins)


def drift_report(
    reference_matrix: np.ndarray,
    batch_matrix: np.ndarray,
    feature_names: Sequence[str],
    *,
    bins: int = 10,
    max_rows: int = 200_000,
    seed: int = 0,
) -> DriftReport:
    """Per-feature PSI, KS statistic and Wasserstein distance of a batch against the reference."""
    ref = np.asarray(reference_matrix, dtype=np.float64)
    bat = np.asarray(batch_matrix, dtype=np.float64)
    names = list(feature_names)
    for label, m in (("reference", ref), ("batch", bat)):
        if m.ndim != 2 or m.shape[1] != len(names):
            raise GateError(
                f"{label} matrix does not match the features",
                field=label,
                expected=f"(rows, {len(names)})",
                found=m.shape,
            )
        if m.shape[0] == 0:
            raise GateError(f"{label} matrix is empty", field=label, expected=">= 1 row", found=0)
        if not np.isfinite(m).all():
            raise GateError(
                f"{label} matrix holds NaN or infinite values",
                field=label,
                expected="finite values",
                found=int((~np.isfinite(m)).sum()),
            )
    if bins < 2:
        raise GateError("PSI needs at least two bins", field="bins", expected=">= 2", found=bins)
    rng = np.random.default_rng(seed)
    ref_used = subsample(ref, max_rows, rng)
    bat_used = subsample(bat, max_rows, rng)
    features = []
    for j, name in enumerate(names):
        r, b = ref_used[:, j], bat_used[:, j]
        value, n_bins = psi(r, b, bins)
        ks = float(stats.ks_2samp(r, b).statistic)
        wd = float(stats.wasserstein_distance(r, b))
        r_std = float(np.std(r))
        features.append(
            FeatureDrift(
                name=name,
                psi=value,
                ks_statistic=ks,
                wasserstein=wd,
                wasserstein_std=wd / r_std if r_std > 0 else wd,
                reference_mean=float(np.mean(r)),
                batch_mean=float(np.mean(b)),
                reference_std=r_std,
                batch_std=float(np.std(b)),
                bins=n_bins,
            )
        )
    return DriftReport(
        features=tuple(features),
        n_reference=int(ref.shape[0]),
        n_batch=int(bat.shape[0]),
        n_reference_used=int(ref_used.shape[0]),
        n_batch_used=int(bat_used.shape[0]),
        seed=seed,
    )
