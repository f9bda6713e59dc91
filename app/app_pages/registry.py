"""Registry: every version, its replayed state and channel, and the timeline of decisions."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from app import services
from app.app_pages import common

st.title("Model registry")
common.flash()
state = services.channel_state()
c1, c2, c3 = st.columns(3)
c1.metric("In production", state.production or "none")
c2.metric("Staging", state.staging or "none")
c3.metric("Ledger entries", state.head_seq)

left, right = st.columns([2, 1])
query = left.text_input("Filter versions", placeholder="e.g. 1.2")
chosen = right.multiselect(
    "States", list(services.STATE_LABELS), format_func=lambda s: services.STATE_LABELS[s]
)
rows = services.version_rows(query, tuple(chosen))
size = st.select_slider("Rows per page", [25, 50, 100, 250], value=50)
pages = max(1, -(-len(rows) // size))
page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1)
shown = rows[(page - 1) * size : page * size]
st.caption(f"{len(rows)} versions match; showing {len(shown)}.")
st.dataframe(
    pd.DataFrame(
        [
            {
                "version": r.version,
                "state": services.STATE_LABELS.get(r.state, r.state),
                "channel": r.channel,
                "approvals": r.approvals,
                "vetoes": r.vetoes,
                "still needed": r.missing,
            }
            for r in shown
        ]
    ),
    hide_index=True,
)

st.subheader("Timeline of decisions")
events = services.timeline(limit=500)
if events:
    frame = pd.DataFrame(events)
    figure = px.scatter(
        frame,
        x="recorded",
        y="version",
        color="decision",
        symbol="role",
        hover_data=["seq", "actor", "reason", "target"],
        height=320,
    )
    figure.update_traces(marker={"size": 12})
    st.plotly_chart(figure)
    st.dataframe(frame, hide_index=True)
else:
    st.info("No decisions yet.")
