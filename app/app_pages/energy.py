"""Energy and carbon: the training run and every monitoring run, measured vs estimated."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from app import services
from app.app_pages import common

version = common.need_version()
st.title(f"Energy and carbon — {version}")
rows = [
    {
        "run": t["run_id"],
        "kind": t["kind"],
        "method": t["method"],
        "energy (kWh)": t["energy_kwh"],
        "emissions (kg CO2e)": t["emissions_kg_co2e"],
        "duration (s)": t["duration_s"],
        "grid (g/kWh)": t["grid_intensity_g_per_kwh"],
        "PUE": t["pue"],
        "estimator": t["estimator"],
    }
    for t in services.training_telemetry(version)
]
for run in services.monitoring_runs(version):
    rows.append(
        {
            "run": run["run_id"],
            "kind": "monitoring",
            "method": run["telemetry_method"],
            "energy (kWh)": run["energy_kwh"],
            "emissions (kg CO2e)": run["emissions_kg_co2e"],
            "duration (s)": run.get("duration_s"),
            "grid (g/kWh)": run.get("grid_intensity_g_per_kwh"),
            "PUE": run.get("pue"),
            "estimator": "green-algorithms-v2",
        }
    )
if not rows:
    st.info("No telemetry recorded for this version.")
    st.stop()
frame = pd.DataFrame(rows)
total = frame["emissions (kg CO2e)"].sum()
c1, c2 = st.columns(2)
c1.metric("Energy, all runs", f"{frame['energy (kWh)'].sum():.3g} kWh")
c2.metric("Emissions, all runs", f"{total * 1000:.3g} g CO2e")
st.plotly_chart(
    px.bar(
        frame,
        x="run",
        y="emissions (kg CO2e)",
        color="method",
        pattern_shape="kind",
        height=360,
        hover_data=["energy (kWh)", "kind", "estimator"],
    )
)
st.caption(
    "Labels say how each figure was obtained: 'estimated' figures use the Green Algorithms model "
    "(time × power × PUE × grid intensity); 'measured' figures come from a power meter or RAPL."
)
st.dataframe(frame, hide_index=True)
