"""Lineage: the version's W3C PROV graph, from training data to the latest decision."""

from __future__ import annotations

import streamlit as st

from app import services
from app.app_pages import common

version = common.need_version()
st.title(f"Lineage — {version}")
dot = services.lineage_dot(version)
if dot is None:
    st.error("This version holds no provenance.json.")
    st.stop()
st.caption(
    'Entities (yellow) and activities (blue), as in the W3C PROV primer; each activity names its agents ("by ..."). Later records sit above earlier ones.'
)
st.graphviz_chart(dot)
with st.expander("DOT source"):
    st.code(dot, language="dot")
