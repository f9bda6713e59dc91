"""KFM review dashboard: the entry point (``streamlit run app/streamlit_app.py``).

Pages live in ``app/app_pages/`` and render what ``app/services.py`` gives them; the sidebar
holds who is reviewing and which version is under review, shared by every page.
"""

from __future__ import annotations

import streamlit as st

from app import services
from app.app_pages import common

st.set_page_config(page_title="KFM model review", page_icon="🌡️", layout="wide")

pages = {
    "Registry": [
        st.Page("app_pages/registry.py", title="Registry", default=True),
        st.Page("app_pages/decisions.py", title="Decisions"),
    ],
    "Review a version": [
        st.Page("app_pages/review.py", title="Gates and model card"),
        st.Page("app_pages/explainability.py", title="Explainability"),
        st.Page("app_pages/sovereignty_map.py", title="Sovereignty map"),
        st.Page("app_pages/energy.py", title="Energy and carbon"),
        st.Page("app_pages/lineage.py", title="Lineage"),
    ],
    "Operate": [
        st.Page("app_pages/drift.py", title="Drift"),
    ],
}
navigation = st.navigation(pages)

try:
    common.sidebar()
except Exception as error:  # no workspace yet: say so on every page instead of a traceback
    st.error(common.explain(error))
    st.info(
        f"Workspace looked for: `{services.workspace_root()}` (set KFM_WORKSPACE, or run `kfm demo`)."
    )
    st.stop()

navigation.run()
