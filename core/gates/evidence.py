"""Evidence gates: the candidate's XAI attributions and its energy and carbon telemetry."""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats

from core.candidate.inference import make_session, run_matrix
from core.gates.base import Gate, GateContext, Measurement


class XaiGate(Gate):
    """Attributions for every input, SHAP additivity, explained predictions and seed stability."""

    id = "xai"
    title = "XAI interpretability"
    thresholds = {
        "missing_attributions_max": "features without an attribution (overall or for some seed)",
        "explained_samples_min": "number of explained samples",
        "additivity_error_max": "largest |base value + sum(attributions) - prediction| (target units)",
        "prediction_error_max": "largest |ONNX model on the sample inputs - recorded prediction|",
        "seeds_min": "number of seeds the attributions were computed with",
        "seed_rank_correlation_min": "smallest Spearman correlation of mean |SHAP| between two seeds",
    }

    def measure(self, ctx: GateContext) -> Measurement:
        xai = ctx.candidate.xai
        features = [f.name for f in ctx.candidate.metadata.inputs[0].features]
        tables = {
            "overall": xai.mean_abs_attribution,
            **{f"seed {k}": v for k, v in xai.mean_abs_attribution_by_seed.items()},
        }
        missing = sorted(
            {
                f"{where}: {name}"
                for where, table in tables.items()
                for name in features
                if name not in table
            }
        )
        inputs = np.array([s.inputs for s in xai.samples], dtype=np.float32)
        recorded = np.array([s.prediction for s in xai.samples], dtype=np.float64)
        attributions = np.array([s.attributions for s in xai.samples], dtype=np.float64)
        additivity = np.abs(xai.base_value + attributions.sum(axis=1) - recorded)
        session = make_session(ctx.candidate.onnx_path, threads=1)
        predicted = run_matrix(session, ctx.candidate.metadata, inputs)
        prediction_error = np.abs(predicted - recorded)
        seeds = sorted(xai.mean_abs_attribution_by_seed)
        correlations = {}
        for a, b in itertools.combinations(seeds, 2):
            ta, tb = xai.mean_abs_attribution_by_seed[a], xai.mean_abs_attribution_by_seed[b]
            va = [ta.get(n, 0.0) for n in features]
            vb = [tb.get(n, 0.0) for n in features]
            rho = float(stats.spearmanr(va, vb).statistic)
            correlations[f"{a}-{b}"] = rho if math.isfinite(rho) else -1.0
        ranking = sorted(features, key=lambda n: -xai.mean_abs_attribution.get(n, 0.0))
        return Measurement(
            values={
                "missing_attributions": len(missing),
                "explained_samples": len(xai.samples),
                "additivity_error": float(additivity.max()),
                "prediction_error": float(prediction_error.max()),
                "seeds": len(seeds),
                "seed_rank_correlation": min(correlations.values()) if correlations else -math.inf,
            },
            evidence={
                "missing": missing,
                "method": xai.method,
                "explainer": xai.explainer,
                "additivity_error_mean": float(additivity.mean()),
                "seed_rank_correlations": correlations,
                "feature_ranking": ranking,
                "mean_abs_attribution": dict(xai.mean_abs_attribution),
            },
        )


class TelemetryGate(Gate):
    """Energy and carbon records complete and physically plausible."""

    id = "telemetry"
    title = "Energy and carbon telemetry"
    thresholds = {
        "missing_fields_max": "empty descriptive fields (run_id, estimator, location, hardware.cpu)",
        "emissions_rel_error_max": "|emissions - energy x grid intensity| / (energy x grid intensity)",
        "power_per_core_w_min": "average power per core implied by energy / duration (W)",
        "power_per_core_w_max": "average power per core implied by energy / duration (W)",
        "grid_intensity_g_per_kwh_min": "grid carbon intensity (g CO2e / kWh)",
        "grid_intensity_g_per_kwh_max": "grid carbon intensity (g CO2e / kWh)",
        "pue_max": "power usage effectiveness of the data centre",
        "energy_kwh_min": "energy of a run (kWh); zero energy is not a plausible record",
    }

    def measure(self, ctx: GateContext) -> Measurement:
        records = ctx.candidate.telemetry
        missing = []
        rel_errors, power, grid, pue, energy = [], [], [], [], []
        for r in records:
            for name, value in (
                ("run_id", r.run_id),
                ("estimator", r.estimator),
                ("location", r.location),
                ("hardware.cpu", r.hardware.cpu),
            ):
                if not value.strip():
                    missing.append(f"{r.run_id or '?'}: {name}")
            expected = r.energy_kwh * r.grid_intensity_g_per_kwh / 1000.0
            rel_errors.append(
                abs(r.emissions_kg_co2e - expected) / expected
                if expected > 0
                else (0.0 if r.emissions_kg_co2e == 0 else math.inf)
            )
            power.append(r.energy_kwh * 3.6e6 / r.duration_s / r.hardware.cores)
            grid.append(r.grid_intensity_g_per_kwh)
            pue.append(r.pue)
            energy.append(r.energy_kwh)
        return Measurement(
            values={
                "missing_fields": len(missing),
                "emissions_rel_error": tuple(rel_errors),
                "power_per_core_w": tuple(power),
                "grid_intensity_g_per_kwh": tuple(grid),
                "pue": tuple(pue),
                "energy_kwh": tuple(energy),
            },
            evidence={
                "missing": missing,
                "records": [
                    {
                        "run_id": r.run_id,
                        "kind": r.kind,
                        "method": r.method,
                        "estimator": r.estimator,
                        "energy_kwh": r.energy_kwh,
                        "emissions_kg_co2e": r.emissions_kg_co2e,
                        "duration_s": r.duration_s,
                        "hardware": r.hardware.model_dump(mode="json"),
                        "grid_intensity_g_per_kwh": r.grid_intensity_g_per_kwh,
                        "pue": r.pue,
                        "location": r.location,
                    }
                    for r in records
                ],
            },
        )
