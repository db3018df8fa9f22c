"""Runs: every stored run; open one, compare two, export or import a bundle, delete."""

import streamlit as st

from dashboard.live import live_run
from dashboard.loading import get_store, run_samples
from dashboard.page import reviewer_mode, start_page
from dashboard.results import report_names, show_run, verdict_banner
from dashboard.runs import run_label, show_runs_table
from dashboard.text import plain
from nc_core.errors import NCError
from nc_core.reports.figures import compare_l1_figure

CONFIRM_DELETE = "confirm_delete"
OPEN_RUN = "runs_open"

start_page("Runs", ":material/folder_open:")
st.title("Runs")
store = get_store()
reviewer = reviewer_mode()
if reviewer:
    st.info("Reviewer mode: runs are shown read-only.")
else:
    with st.expander("Import a run bundle"):
        bundle = st.file_uploader("Run bundle (.zip exported from this dashboard)", type=["zip"], key="import_bundle")
        if st.button("Import", disabled=bundle is None, key="import_button"):
            try:
                imported = store.import_bundle(bundle.getvalue())
            except NCError as error:
                st.error(plain(error))
            else:
                st.success("The run was imported.")
                st.query_params["run"] = imported
                st.session_state[OPEN_RUN] = imported

records = store.list_runs()
if not records:
    st.info("No runs yet: start one on the Reverse-engineer or Scan page.")
    st.stop()
show_runs_table(records, detailed=True)
by_id = {record.id: record for record in records}

open_tab, compare_tab = st.tabs(["Open a run", "Compare two runs"])
with open_tab:
    if st.session_state.get(OPEN_RUN) not in by_id:  # first visit, a link with ?run=, or a deleted run
        st.session_state[OPEN_RUN] = (
            st.query_params.get("run") if st.query_params.get("run") in by_id else records[0].id
        )
    run_id = st.selectbox("Run", list(by_id), key=OPEN_RUN, format_func=lambda i: run_label(by_id[i]))
    st.query_params["run"] = run_id
    record = by_id[run_id]
    left, right = st.columns(2)
    left.download_button(
        "Export bundle (.zip)",
        lambda: store.export_bundle(run_id),
        file_name=f"nc_run_{run_id}.zip",
        mime="application/zip",
        icon=":material/download:",
        key="export_bundle",
        on_click="ignore",
    )
    if not reviewer:
        if record.active:
            right.caption("Cancel the run before deleting it.")
        elif right.button("Delete run", icon=":material/delete:", key="delete_run"):
            st.session_state[CONFIRM_DELETE] = run_id
        if st.session_state.get(CONFIRM_DELETE) == run_id:
            st.warning(f"Delete run {run_id} and its files? This cannot be undone.")
            yes, no = st.columns(2)
            if yes.button("Yes, delete it", type="primary", key="delete_confirm"):
                st.session_state.pop(CONFIRM_DELETE)
                try:
                    store.delete(run_id)
                except NCError as error:  # it started working again in between, say
                    st.error(plain(error))
                else:
                    st.query_params.pop("run", None)
                    st.rerun()
            if no.button("Keep it", key="delete_cancel"):
                st.session_state.pop(CONFIRM_DELETE)
                st.rerun()
    if record.active:
        live_run(record.id, can_cancel=not reviewer)
    else:
        show_run(record, store.load_report(run_id), run_samples(record), key="runs_open")

with compare_tab:
    scans = [r.id for r in records if r.kind == "scan" and r.verdict is not None]
    if len(scans) < 2:
        st.caption("Compare needs two finished scans.")
    else:
        picks = [
            st.selectbox(f"Run {n}", scans, index=n - 1, key=f"compare_{n}", format_func=lambda i: run_label(by_id[i]))
            for n in (1, 2)
        ]
        reports = [store.load_report(i) for i in picks]
        for column, run, report in zip(st.columns(2), picks, reports):
            with column:
                st.markdown(
                    f"**{plain(by_id[run].model)}** on {plain(by_id[run].data)} · {plain(run_label(by_id[run]))}"
                )
                verdict_banner(report, report_names(report, by_id[run]))
        st.plotly_chart(compare_l1_figure(reports, [f"{by_id[i].model} ({i[:6]})" for i in picks]), key="compare_l1")
