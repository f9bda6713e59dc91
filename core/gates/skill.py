"""Gates on the model's output against the observations: accuracy, spatial pattern, extremes,
impact. All four read the chunked :class:`core.gates.validation.ValidationStats` (computed once)."""

from __future__ import annotations

import math

from core.errors import GateError
from core.gates.base import Gate, GateContext, Measured, Measurement
from core.gates.stats import IMPACT_INDEX_PARAMETERS


class AccuracyGate(Gate):
    """Area-weighted RMSE, MAE and bias, and skill against the coarse baseline."""

    id = "accuracy"
    title = "Accuracy and skill against the baseline"
    thresholds = {
        "rmse_max": "area-weighted root-mean-square error (target units)",
        "mae_max": "area-weighted mean absolute error (target units)",
        "abs_bias_max": "absolute area-weighted mean error (target units)",
        "skill_min": "1 - rmse / baseline_rmse (> 0: the model beats the baseline)",
        "reported_rmse_error_max": "|recomputed rmse - rmse in model_summary.json|",
    }

    def measure(self, ctx: GateContext) -> Measurement:
        s = ctx.validation_stats()
        if not s.has_baseline:
            raise GateError(
                "the model declares no baseline, so its skill cannot be measured",
                file="model_metadata.json",
                field="baseline_variable",
                expected="a baseline variable in the validation data",
                found=None,
            )
        rmse = math.sqrt(s.wmean("w_err2"))
        base_rmse = math.sqrt(s.wmean("w_berr2"))
        bias = s.wmean("w_err")
        reported = ctx.candidate.summary.metrics["validation"].rmse
        return Measurement(
            values={
                "rmse": rmse,
                "mae": s.wmean("w_abs_err"),
                "abs_bias": abs(bias),
                "skill": 1.0 - rmse / base_rmse if base_rmse > 0 else -math.inf,
                "reported_rmse_error": abs(rmse - reported),
            },
            evidence={
                "bias": bias,
                "baseline_rmse": base_rmse,
                "baseline_mae": s.wmean("w_abs_berr"),
                "baseline_bias": s.wmean("w_berr"),
                "reported_rmse": reported,
                "mae_skill": 1.0 - s.wmean("w_abs_err") / s.wmean("w_abs_berr"),
                "n_samples": s.stats.n,
                "n_chunks": s.n_chunks,
                "baseline_variable": ctx.candidate.metadata.baseline_variable,
                "weighting": "cos(latitude)",
            },
        )


class SpatialPatternGate(Gate):
    """Centered pattern correlation, variability ratio and Taylor skill of the spatial anomalies."""

    id = "spatial_pattern"
    title = "Spatial pattern consistency"
    thresholds = {
        "pattern_correlation_min": "area-weighted centered pattern correlation, pooled over time steps",
        "variability_ratio_min": "spatial standard deviation of the model / of the observations",
        "variability_ratio_max": "spatial standard deviation of the model / of the observations",
        "taylor_skill_min": "Taylor (2001) skill 4(1+R)/((s+1/s)^2 (1+R0)), R0 = 1",
    }

    def measure(self, ctx: GateContext) -> Measurement:
        s = ctx.validation_stats().stats.sums
        corr = s["w_pa_oa"] / math.sqrt(s["w_pa2"] * s["w_oa2"])
        ratio = math.sqrt(s["w_pa2"] / s["w_oa2"])
        evidence: dict[str, float | str] = {
            "anomaly": "departure from each time step's area-weighted spatial mean",
        }
        if "w_ba2" in s:
            b_corr = s["w_ba_oa"] / math.sqrt(s["w_ba2"] * s["w_oa2"])
            b_ratio = math.sqrt(s["w_ba2"] / s["w_oa2"])
            evidence |= {
                "baseline_pattern_correlation": b_corr,
                "baseline_variability_ratio": b_ratio,
                "baseline_taylor_skill": taylor_skill(b_corr, b_ratio),
            }
        return Measurement(
            values={
                "pattern_correlation": corr,
                "variability_ratio": ratio,
                "taylor_skill": taylor_skill(corr, ratio),
            },
            evidence=evidence,
        )


def taylor_skill(correlation: float, sigma_ratio: float, r0: float = 1.0) -> float:
    """Taylor (2001, JGR 106, eq. 4) skill score."""
    return 4.0 * (1.0 + correlation) / ((sigma_ratio + 1.0 / sigma_ratio) ** 2 * (1.0 + r0))


class ExtremesGate(Gate):
    """Tail quantile biases and exceedance counts beyond the observed 1st/99th percentiles."""

    id = "extremes"
    title = "Extremes: tail quantiles and exceedances"
    thresholds = {
        "q01_abs_bias_max": "|1st percentile of the model - of the observations| (area-weighted)",
        "q99_abs_bias_max": "|99th percentile of the model - of the observations| (area-weighted)",
        "lower_exceedance_ratio_min": "model / observed count of samples below the observed 1st percentile",
        "lower_exceedance_ratio_max": "model / observed count of samples below the observed 1st percentile",
        "upper_exceedance_ratio_min": "model / observed count of samples above the observed 99th percentile",
        "upper_exceedance_ratio_max": "model / observed count of samples above the observed 99th percentile",
    }

    def measure(self, ctx: GateContext) -> Measurement:
        s = ctx.validation_stats()
        obs_q01, obs_q99 = s.quantile("obs", 0.01), s.quantile("obs", 0.99)
        pred_q01, pred_q99 = s.quantile("pred", 0.01), s.quantile("pred", 0.99)
        low_obs = s.count_beyond("obs", obs_q01, above=False)
        low_pred = s.count_beyond("pred", obs_q01, above=False)
        high_obs = s.count_beyond("obs", obs_q99, above=True)
        high_pred = s.count_beyond("pred", obs_q99, above=True)
        mean_bias = s.wmean("w_err")
        tail_bias = max(abs(pred_q01 - obs_q01), abs(pred_q99 - obs_q99))
        notes: list[str] = []
        if tail_bias > 2 * abs(mean_bias):
            notes.append(
                f"tails are worse than the mean: largest tail-quantile bias {tail_bias:.3f} "
                f"against a mean bias of {mean_bias:+.4f}"
            )
        for label, model, obs in (("cold", low_pred, low_obs), ("warm", high_pred, high_obs)):
            if obs > 0 and model < 0.8 * obs:
                notes.append(
                    f"the model under-produces {label} extremes: {model:.0f} samples beyond the "
                    f"observed {'1st' if label == 'cold' else '99th'} percentile, against {obs:.0f} "
                    "observed"
                )
        return Measurement(
            values={
                "q01_abs_bias": abs(pred_q01 - obs_q01),
                "q99_abs_bias": abs(pred_q99 - obs_q99),
                "lower_exceedance_ratio": low_pred / low_obs if low_obs > 0 else math.inf,
                "upper_exceedance_ratio": high_pred / high_obs if high_obs > 0 else math.inf,
            },
            evidence={
                "obs_q01": obs_q01,
                "obs_q99": obs_q99,
                "model_q01": pred_q01,
                "model_q99": pred_q99,
                "obs_count_below_q01": low_obs,
                "model_count_below_q01": low_pred,
                "obs_count_above_q99": high_obs,
                "model_count_above_q99": high_pred,
                "mean_bias": mean_bias,
                "quantile_resolution_k": 0.01,
                "samples_outside_sketch_range": s.stats.outside_range,
            },
            notes=tuple(notes),
        )


class ImpactGate(Gate):
    """Hazard and hydrology screens: bias of derived temperature indices against observations."""

    id = "impact"
    title = "Hazard and hydrology impact screens"
    thresholds = {
        f"{name}_rel_bias_max": f"|model - observed| / max(observed, 1) of {name}"
        for name, _ in IMPACT_INDEX_PARAMETERS.values()
    }
    parameters = dict.fromkeys(IMPACT_INDEX_PARAMETERS, float)

    def measure(self, ctx: GateContext) -> Measurement:
        s = ctx.validation_stats()
        values: dict[str, Measured] = {}
        evidence: dict[str, object] = {"sample_hours": s.sample_hours}
        for index in s.indices:
            obs, pred = s.stats.index_obs[index.name], s.stats.index_pred[index.name]
            base = s.stats.index_base.get(index.name)
            values[f"{index.name}_rel_bias"] = abs(pred - obs) / max(abs(obs), 1.0)
            if index.kind.startswith("degree_days"):
                obs, pred = s.degree_days(obs), s.degree_days(pred)
                base = None if base is None else s.degree_days(base)
            entry = {
                "kind": index.kind,
                "threshold_k": index.threshold_k,
                "observed": obs,
                "model": pred,
            }
            if base is not None:
                entry["baseline"] = base
            evidence[index.name] = entry
        return Measurement(
            values=values,
            evidence=evidence,
            notes=(
                "counts are (grid point, time step) samples; degree-days are "
                "area-weighted means per grid point over the validation period",
            ),
        )
