"""Explainability: SHAP attributions, global and per sample, and their stability across seeds."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import services
from app.app_pages import common

version = common.need_version()
st.title(f"Explainability — {version}")
xai = services.xai_summary(version)
if xai is None:
    st.error("This version holds no xai/shap_summary.json.")
    st.stop()

st.caption(
    f"{xai['explainer']} (shap {xai['shap_version']}), {xai['sample_size']} validation samples per seed, "
    f"base value {xai['base_value']:.3f}."
)
global_rows = [
    {"feature": f, "mean |SHAP|": v, "seed": seed}
    for seed, values in xai["mean_abs_attribution_by_seed"].items()
    for f, v in values.items()
]
st.subheader("Global importance (mean |SHAP| per feature, by seed)")
st.plotly_chart(
    px.bar(
        pd.DataFrame(global_rows),
        x="mean |SHAP|",
        y="feature",
        color="seed",
        barmode="group",
        orientation="h",
        height=320,
        log_x=True,
    )
)

st.subheader("One sample")
samples = xai["samples"]
position = st.slider("Sample", 0, len(samples) - 1, 0)
sample = samples[position]
features = xai["features"]
contributions = go.Figure(
    go.Waterfall(
        orientation="h",
        y=[*features, "prediction"],
        x=[*sample["attributions"], 0],
        measure=[*(["relative"] * len(features)), "total"],
        base=xai["base_value"],
        text=[f"{v:+.3f}" for v in sample["attributions"]] + [f"{sample['prediction']:.3f}"],
    )
)
contributions.update_layout(height=340, margin={"t": 20}, xaxis_title="model output (K)")
st.plotly_chart(contributions)
st.dataframe(
    pd.DataFrame({"feature": features, "input": sample["inputs"], "SHAP": sample["attributions"]}),
    hide_index=True,
)
gap = abs(xai["base_value"] + sum(sample["attributions"]) - sample["prediction"])
st.caption(f"Additivity: base + attributions − ONNX prediction = {gap:.2e} K.")

runs = services.monitoring_runs(version)
if runs:
    st.subheader("Attributions on production batches")
    st.caption("From each monitoring run's exact Shapley values on a sample of its batch.")
    st.dataframe(
        pd.DataFrame([{"run": r["run_id"], "batch": r["batch"]} for r in runs]), hide_index=True
    )
