"""Decisions: approve or veto the version under review (signed), and the verified ledger."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import services
from app.app_pages import common

st.title("Decisions")
common.flash()
version = common.need_version()
state = services.channel_state()
vs = state.versions.get(version)
facts = services.version_facts(version)

st.subheader(f"Version {version}")
c1, c2, c3 = st.columns([2, 1, 1])  # "promoted (production)" must not be cut off
c1.metric("State", services.STATE_LABELS.get(vs.state, vs.state) if vs else "not in the ledger")
c2.metric("Council approvals", len(vs.approvers("council")) if vs else 0)
c3.metric("Vetoes", len(vs.vetoes) if vs else 0)
st.caption(
    f"Submitted by {facts.submitter}; stewards concerned by its footprint: "
    f"{', '.join(facts.concerned_stewards) or 'none'}."
)
if vs and vs.gates_failed:
    st.error(
        "Failing gates: "
        + "; ".join(
            f"{gate} (waived by {', '.join(vs.waivers_of(gate)) or 'nobody yet'})"
            for gate in vs.gates_failed
        )
    )
if vs and vs.breaches:
    st.error(
        "Open monitoring breaches: "
        + "; ".join(f"{b.kind} (ledger entry #{b.seq})" for b in vs.breaches)
    )
if vs and vs.missing:
    st.warning("Still needed before promotion: " + "; ".join(vs.missing))
for event in state.events:
    if event.version == version:
        st.caption(f"#{event.seq} {event.recorded_at}: {event.said}")


@st.fragment
def decide() -> None:
    reviewer = common.current_reviewer()
    actions = services.allowed_actions(reviewer, version)
    gates = services.waivable_gates(reviewer, version)
    common.decision_form(version, actions, key="decide", gates=gates)


decide()

st.subheader("Ledger")
ok, summary, rows = services.ledger_check()
(st.success if ok else st.error)(summary)
st.dataframe(pd.DataFrame(rows[::-1]), hide_index=True)
