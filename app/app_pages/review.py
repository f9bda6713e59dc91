"""Review: the version's gate results (measured against thresholds) and its model card."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import services
from app.app_pages import common

version = common.need_version()
st.title(f"Gates and model card — {version}")
report = services.gates(version)
if report is None:
    st.error("This version holds no gates.json.")
    st.stop()

decision = report.get("decision", "blocked")
(st.success if report.get("passed") else st.error)(
    f"Gates: {decision}. {sum(g['status'] == 'pass' for g in report['gates'])} of "
    f"{len(report['gates'])} gates pass (policy {report['policy']['version']})."
)
st.dataframe(
    pd.DataFrame(
        [
            {
                "gate": g["id"],
                "status": g["status"],
                "title": g.get("title", ""),
                "failures": "; ".join(g.get("failures", [])),
            }
            for g in report["gates"]
        ]
    ),
    hide_index=True,
)

# Headroom: measured / threshold for every check (1.0 is the limit), one bar per check.
rows = [
    {
        "gate": g["id"],
        "check": c["key"],
        "measured": c["measured"],
        "threshold": c["threshold"],
        "operator": c["operator"],
        "passed": c["passed"],
    }
    for g in report["gates"]
    for c in g.get("checks", [])
]
if rows:
    frame = pd.DataFrame(rows)
    st.subheader("Measured against thresholds")
    gate_id = st.selectbox("Gate", sorted(frame["gate"].unique()))
    part = frame[frame["gate"] == gate_id]
    figure = go.Figure()
    figure.add_bar(
        x=part["check"],
        y=part["measured"],
        name="measured",
        marker_color=["#2e7d32" if p else "#c62828" for p in part["passed"]],
    )
    figure.add_scatter(
        x=part["check"],
        y=part["threshold"],
        mode="markers",
        name="threshold",
        marker_symbol="line-ew-open",
        marker_size=28,
        marker_line_width=3,
        marker_color="#111111",
    )
    figure.update_layout(height=340, margin={"t": 20}, yaxis_title="value (units of the check)")
    st.plotly_chart(figure)
    st.dataframe(part, hide_index=True)
    gate = next(g for g in report["gates"] if g["id"] == gate_id)
    with st.expander("Evidence and notes"):
        for note in gate.get("notes", []):
            st.markdown(f"- {note}")
        st.json(gate.get("evidence", {}), expanded=False)

item = services.stac_item(version)
st.subheader("Model card (STAC item, MLM extension)")
if item is None:
    st.info("No STAC item in this version.")
else:
    props = item["properties"]
    st.markdown(
        f"**{props.get('mlm:name', item['id'])}** · architecture **{props.get('mlm:architecture', '?')}** · "
        f"{props.get('mlm:framework', '?')} {props.get('mlm:framework_version', '')} · "
        f"{props.get('mlm:total_parameters', 0):,} parameters (tree nodes)"
    )
    st.write(props.get("description", ""))
    st.markdown(
        f"**Tasks:** {', '.join(props.get('mlm:tasks', []))} · **Accelerator:** {props.get('mlm:accelerator')} · "
        f"**Period:** {props.get('start_datetime')} → {props.get('end_datetime')}"
    )
    inputs = props.get("mlm:input", [])
    if inputs:
        st.markdown("**Inputs**")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "name": i["name"],
                        "bands": ", ".join(
                            b["name"] if isinstance(b, dict) else str(b) for b in i.get("bands", [])
                        ),
                        "shape": str(i.get("input", {}).get("shape")),
                        "type": i.get("input", {}).get("data_type"),
                    }
                    for i in inputs
                ]
            ),
            hide_index=True,
        )
    metrics = props.get("kfm:metrics")
    if metrics:
        st.markdown("**Metrics (from the training-time evaluation)**")
        st.json(metrics, expanded=False)
    st.markdown("**Hyperparameters**")
    st.json(props.get("mlm:hyperparameters", {}), expanded=False)
    care = props.get("kfm:care")
    if care:
        st.markdown("**CARE and sovereignty**")
        st.json(care, expanded=False)
    st.markdown("**Assets**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "asset": k,
                    "href": a["href"],
                    "roles": ", ".join(a.get("roles", [])),
                    "file:checksum": a.get("file:checksum", ""),
                    "size": a.get("file:size"),
                }
                for k, a in sorted(item.get("assets", {}).items())
            ]
        ),
        hide_index=True,
    )
