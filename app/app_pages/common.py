"""Pieces shared by the pages: the sidebar (reviewer and version), errors, the sign dialog."""

from __future__ import annotations

import streamlit as st

from app import services
from core.errors import KfmError

REVIEWER = "reviewer"
VERSION = "version"


def explain(error: BaseException) -> str:
    """One readable line for an error (engine errors carry file, field, expected and found)."""
    if isinstance(error, KfmError):
        return error.diagnostics()
    return f"{type(error).__name__}: {error}"


def sidebar() -> None:
    """Who is reviewing, and which version: chosen once, used by every page."""
    people = services.reviewers()
    with st.sidebar:
        st.caption(f"Workspace: `{services.workspace_root().name}`")
        labels = {r.id: f"{r.name} ({', '.join(r.roles)})" for r in people}
        ids = ["", *labels]
        st.selectbox(
            "Reviewing as",
            ids,
            key=REVIEWER,
            format_func=lambda rid: labels.get(rid, "— choose yourself —"),
            help="Only the actions your roster roles allow are offered; your key signs them.",
        )
        versions = [row.version for row in services.version_rows()]
        if not versions:
            st.info("The registry is empty: deploy a candidate with `kfm deploy`.")
            return
        if st.session_state.get(VERSION) not in versions:
            st.session_state[VERSION] = services.default_version() or versions[0]
        st.selectbox("Version under review", versions, key=VERSION)
        state = services.channel_state()
        st.metric("Production", state.production or "none")
        st.caption(f"Staging: {state.staging or 'none'} · ledger head #{state.head_seq}")


def current_version() -> str | None:
    value = st.session_state.get(VERSION)
    return str(value) if value else None


def current_reviewer() -> str | None:
    value = st.session_state.get(REVIEWER)
    return str(value) if value else None


def need_version() -> str:
    version = current_version()
    if version is None:
        st.info("No version to show yet.")
        st.stop()
    return str(version)


ACTION_LABELS = {
    "approve": "Approve",
    "veto": "Veto",
    "request-rollback": "Request rollback",
    "waive": "Waive a failing gate",
    "resolve": "Resolve the open breaches",
}


def decision_form(
    version: str, actions: list[tuple[str, str]], *, key: str, gates: list[str] | None = None
) -> None:
    """Choose an action and a reason, then confirm with id and passphrase in a dialog.

    ``gates`` are the failing gates the reviewer may waive (asked for when they choose waive).
    """
    pending = f"{key}-pending"
    if not actions:
        who = current_reviewer()
        st.info(
            "Choose yourself in the sidebar to act."
            if not who
            else f"The roster gives {who} no action on {version} right now."
        )
        return
    choice = st.radio(
        "Decision",
        actions,
        format_func=lambda a: f"{ACTION_LABELS[a[0]]} as {a[1]}",
        key=f"{key}-action",
        horizontal=True,
    )
    gate = None
    if choice[0] == "waive":
        gate = st.selectbox("Gate to waive", gates or [], key=f"{key}-gate")
    reason = st.text_area("Reason (recorded and signed)", key=f"{key}-reason")
    if st.button("Sign…", key=f"{key}-sign", type="primary", disabled=not reason.strip()):
        st.session_state[pending] = {
            "action": choice[0],
            "role": choice[1],
            "reason": reason,
            "gate": gate,
        }
    if st.session_state.get(pending):
        _confirm(version, pending)


@st.dialog("Sign this decision")
def _confirm(version: str, pending: str) -> None:
    request = st.session_state[pending]
    gate = request.get("gate")
    st.write(
        f"**{ACTION_LABELS[request['action']]}** version **{version}** as **{request['role']}**"
        + (f" (gate **{gate}**)." if gate else ".")
    )
    st.caption(f"Reason: {request['reason']}")
    reviewer = st.text_input("Reviewer id", value=current_reviewer() or "", key=f"{pending}-id")
    passphrase = st.text_input("Passphrase of your key", type="password", key=f"{pending}-pass")
    left, right = st.columns(2)
    if left.button("Sign and submit", type="primary", key=f"{pending}-ok"):
        try:
            said = services.submit_decision(
                request["action"],
                version,
                reviewer,
                request["role"],
                passphrase,
                request["reason"],
                gate=gate,
            )
        except Exception as error:
            st.error(explain(error))
            return
        st.session_state[pending] = None
        st.session_state["flash"] = f"Signed and recorded: {said}"
        st.rerun()
    if right.button("Cancel", key=f"{pending}-cancel"):
        st.session_state[pending] = None
        st.rerun()


def flash() -> None:
    message = st.session_state.pop("flash", None)
    if message:
        st.success(message)
