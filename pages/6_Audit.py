"""Audit: scan many models at once (Ray workers in the background), and score them against labels."""

import streamlit as st

from dashboard.audit import show_audit, start_form
from dashboard.loading import get_store
from dashboard.page import reviewer_mode, start_page
from dashboard.text import plain
from nc_core.audit.runner import list_audits, load_audit
from nc_core.errors import NCError

start_page("Audit", ":material/fact_check:")
st.title("Audit many models")
st.caption(
    "Every model gets the same scan as the Scan page, as a task of a local Ray cluster (one worker per core); "
    "each opens as a normal scan run. The command line does the same, and joins a real cluster: "
    "`neural-cleanse audit MANIFEST --ray-address auto`."
)
if not reviewer_mode():
    with st.expander("Start an audit", expanded=not list_audits(get_store())):
        started = start_form()
        if started:
            st.query_params["audit"] = started
            st.rerun()

audits = list_audits(get_store())
if not audits:
    st.info("No audits yet.")
    st.stop()
wanted = st.query_params.get("audit")
chosen = st.selectbox("Audit", audits, index=audits.index(wanted) if wanted in audits else 0, key="audit_open")
st.query_params["audit"] = chosen


@st.fragment(run_every=2)
def follow(audit_id: str) -> None:
    """Refresh a running audit's table every 2 s; once it ended, rerun the page to stop polling."""
    result = load_audit(get_store(), audit_id)
    show_audit(result)
    if result.status != "running":
        st.rerun()


try:
    current = load_audit(get_store(), chosen)
except NCError as error:
    st.error(plain(error))
    st.stop()
if current.status == "running":
    follow(chosen)
else:
    show_audit(current)
