"""Scan and compare: reverse-engineer every class, then the MAD test gives the verdict."""
from functools import partial

import streamlit as st

from dashboard.live import live_run
from dashboard.loading import class_names, get_store, load_run_inputs, selection_inputs_or_stop
from dashboard.page import reviewer_mode, runs_disabled_notice, start_page
from dashboard.results import class_label, show_run
from dashboard.runs import page_run, remember_run, start_run
from dashboard.selection import require_selection
from dashboard.settings import settings_fields
from nc_core.errors import NCError

SCAN_RUN = "scan_run"

start_page("Scan and compare", ":material/biotech:")
st.title("Scan and compare")
if reviewer_mode():
    runs_disabled_notice()
    st.stop()
selection = require_selection()
inputs = selection_inputs_or_stop(selection)
names = class_names(selection, inputs)
record = page_run(SCAN_RUN, "scan")
busy = record is not None and record.active

st.caption(f"{selection.model_label} on {selection.data_label} · pixel range {inputs.data.pixel_range.label} · "
           f"{len(inputs.data):,} samples · {inputs.info.num_classes} classes, one optimisation each")
with st.form("scan_form"):
    classes = st.multiselect("Classes to scan (leave empty for all)", range(inputs.info.num_classes),
                             key="scan_classes", format_func=lambda k: class_label(k, names))
    run_settings = settings_fields("scan")
    submitted = st.form_submit_button("Scan", type="primary", icon=":material/play_arrow:", disabled=busy, key="scan_submit")
if busy:
    st.caption("A scan is in progress; cancel it (finished classes are kept) or wait for it to finish.")
if submitted:
    try:
        remember_run(SCAN_RUN, start_run("scan", selection, inputs, names, run_settings,
                                         sorted(int(k) for k in classes) or None))
    except NCError as error:
        st.error(str(error))
    else:
        st.rerun()

if record is None:
    st.caption("Choose the classes and settings, then Scan. The scan works in the background: you can leave "
               "the page or refresh it and come back.")
elif record.active:
    live_run(record.id, can_cancel=True)
else:
    show_run(record, get_store().load_report(record.id), partial(load_run_inputs, record), key="scan")
