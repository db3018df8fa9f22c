"""Reverse-engineer one class: the smallest trigger that sends other images to the chosen class."""

import streamlit as st

from dashboard.run_page import open_run_page, show_page_run, submit
from dashboard.settings import settings_fields
from dashboard.text import class_label, plain

page = open_run_page("Reverse-engineer one class", ":material/search:", "reverse")
inputs, names = page.inputs, page.names

st.caption(
    f"{plain(page.selection.model_label)} on {plain(page.selection.data_label)} · pixel range "
    f"{inputs.data.pixel_range.label} · {len(inputs.data):,} samples"
)
with st.form("reverse_form"):
    target = st.selectbox(
        "Target class",
        range(inputs.info.num_classes),
        key="reverse_target",
        format_func=lambda k: class_label(k, names),
    )
    run_settings = settings_fields("reverse")
    submitted = st.form_submit_button(
        "Run", type="primary", icon=":material/play_arrow:", disabled=page.busy, key="reverse_submit"
    )
if page.busy:
    st.caption("A run is in progress; cancel it or wait for it to finish before starting another.")
if submitted:
    submit(page, run_settings, [int(target)])

show_page_run(
    page,
    "Choose a target class and settings, then Run. The run works in the background: you can "
    "leave the page or refresh it and come back.",
)
