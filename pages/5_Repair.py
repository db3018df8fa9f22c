"""Repair: a repair run, live or finished: its before/after figures, the repaired model, its re-scan."""

import streamlit as st

from dashboard.live import live_run
from dashboard.loading import get_store, run_samples
from dashboard.page import reviewer_mode, start_page
from dashboard.results import show_run
from dashboard.runs import page_run

start_page("Repair", ":material/healing:")
st.title("Repair")
record = page_run("repair_run", "repair")
if record is None:
    st.info(
        "Open a finished scan (Scan and compare, or Runs) and use **Repair this model** under its result: "
        "the repair runs in the background and shows up here, with its before/after figures and a re-scan."
    )
    st.stop()
if record.active:
    live_run(record.id, can_cancel=not reviewer_mode())
else:
    show_run(record, get_store().load_report(record.id), run_samples(record), key="repair")
