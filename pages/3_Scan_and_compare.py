"""Scan and compare: reverse-engineer every class, then the MAD test gives the verdict."""

import streamlit as st

from dashboard.run_page import open_run_page, show_page_run, submit
from dashboard.settings import settings_fields
from dashboard.text import class_label, plain

page = open_run_page("Scan and compare", ":material/biotech:", "scan")
inputs, names = page.inputs, page.names

st.caption(
    f"{plain(page.selection.model_label)} on {plain(page.selection.data_label)} · pixel range "
    f"{inputs.data.pixel_range.label} · {len(inputs.data):,} samples · {inputs.info.num_classes} classes, "
    "one optimisation each"
)
with st.form("scan_form"):
    classes = st.multiselect(
        "Classes to scan (leave empty for all)",
        range(inputs.info.num_classes),
        key="scan_classes",
        format_func=lambda k: class_label(k, names),
    )
    run_settings = settings_fields("scan", ray=True)
    submitted = st.form_submit_button(
        "Scan", type="primary", icon=":material/play_arrow:", disabled=page.busy, key="scan_submit"
    )
if page.busy:
    st.caption("A scan is in progress; cancel it (finished classes are kept) or wait for it to finish.")
if submitted:
    submit(page, run_settings, sorted(int(k) for k in classes) or None)

show_page_run(
    page,
    "Choose the classes and settings, then Scan. The scan works in the background: you can leave "
    "the page or refresh it and come back.",
)
