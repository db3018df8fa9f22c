"""Reverse-engineer one class: the smallest trigger that sends other images to the chosen class."""
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

REVERSE_RUN = "reverse_run"

start_page("Reverse-engineer one class", ":material/search:")
st.title("Reverse-engineer one class")
if reviewer_mode():
    runs_disabled_notice()
    st.stop()
selection = require_selection()
inputs = selection_inputs_or_stop(selection)
names = class_names(selection, inputs)
record = page_run(REVERSE_RUN, "reverse")
busy = record is not None and record.active

st.caption(f"{selection.model_label} on {selection.data_label} · pixel range {inputs.data.pixel_range.label} · "
           f"{len(inputs.data):,} samples")
with st.form("reverse_form"):
    target = st.selectbox("Target class", range(inputs.info.num_classes), key="reverse_target",
                          format_func=lambda k: class_label(k, names))
    run_settings = settings_fields("reverse")
    submitted = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:", disabled=busy, key="reverse_submit")
if busy:
    st.caption("A run is in progress; cancel it or wait for it to finish before starting another.")
if submitted:
    try:
        remember_run(REVERSE_RUN, start_run("reverse", selection, inputs, names, run_settings, [int(target)]))
    except NCError as error:
        st.error(str(error))
    else:
        st.rerun()

if record is None:
    st.caption("Choose a target class and settings, then Run. The run works in the background: you can "
               "leave the page or refresh it and come back.")
elif record.active:
    live_run(record.id, can_cancel=True)
else:
    show_run(record, get_store().load_report(record.id), partial(load_run_inputs, record), key="reverse")
