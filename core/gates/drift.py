"""The drift gate: validation inputs against the training reference, per feature."""

from __future__ import annotations

from core.gates.base import Gate, GateContext, Measurement
from core.gates.stats import compute_candidate_drift


class DriftGate(Gate):
    """PSI, KS statistic and normalised Wasserstein distance of every input feature."""

    id = "drift"
    title = "Input drift against the training reference"
    thresholds = {
        "psi_max": "largest Population Stability Index over the input features",
        "ks_statistic_max": "largest two-sample Kolmogorov-Smirnov statistic over the input features",
        "wasserstein_std_max": "largest Wasserstein distance / reference standard deviation",
    }
    parameters = {"psi_bins": int, "sample_rows": int}

    def measure(self, ctx: GateContext) -> Measurement:
        report = compute_candidate_drift(
            ctx.candidate,
            bins=int(self.param("psi_bins")),
            max_rows=int(self.param("sample_rows")),
            progress=ctx.progress,
        )
        metrics = ("psi", "ks_statistic", "wasserstein_std")
        return Measurement(
            values={m: report.max_of(m) for m in metrics},
            evidence={
                "worst_feature": {m: report.worst(m) for m in metrics},
                **report.to_dict(),
                "reference": ctx.candidate.metadata.reference_data,
                "batch": ctx.candidate.metadata.validation_data,
            },
        )
