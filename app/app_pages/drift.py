"""Drift: per-feature drift over monitoring runs against the policy's limits; open breaches,
resolve them (working group) or request a rollback."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from app import services
from app.app_pages import common

version = common.need_version()
st.title(f"Drift — {version}")
common.flash()
runs = services.monitoring_runs(version)
limits = services.monitoring_limits()
if not runs:
    st.info(
        f"No monitoring runs of {version} yet: `kfm monitor {version} --batch FILE` records one."
    )
else:
    metric = st.radio(
        "Measure", list(limits), horizontal=True, format_func=lambda m: m.replace("_", " ")
    )
    frame = pd.DataFrame(
        [
            {"run": r["run_id"], "batch": r["batch"], "feature": feature, "value": values[metric]}
            for r in runs
            for feature, values in r["drift"].items()
        ]
    )
    figure = px.line(
        frame, x="run", y="value", color="feature", markers=True, hover_data=["batch"], height=380
    )
    figure.add_hline(
        y=limits[metric],
        line_dash="dash",
        line_color="#c62828",
        annotation_text=f"policy limit {limits[metric]}",
    )
    st.plotly_chart(figure)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "run": r["run_id"],
                    "batch": r["batch"],
                    "predictions": r["n_predictions"],
                    "breaches": "; ".join(r["breaches"]) or "none",
                    "needs rollback": r["needs_rollback"],
                }
                for r in runs
            ]
        ),
        hide_index=True,
    )

current = services.channel_state().versions.get(version)
if current is not None and current.breaches:
    st.error(
        "Open breaches (they block promotion until a later in-bounds run or a working-group "
        "resolve): " + "; ".join(f"{b.kind} (ledger entry #{b.seq})" for b in current.breaches)
    )

st.subheader("Resolve breaches or request a rollback")
st.caption(
    "Signed with your key. A rollback request of the production version rolls it back to the "
    "last good version at once (derived from the verified ledger); a working-group resolve "
    "closes the version's open breaches."
)


@st.fragment
def request() -> None:
    actions = [
        a
        for a in services.allowed_actions(common.current_reviewer(), version)
        if a[0] in ("request-rollback", "resolve")
    ]
    common.decision_form(version, actions, key="rollback")


request()
