"""Home: what a backdoor is, a one-click start with a shipped sample, and the most recent runs.

Run with ``streamlit run app.py``. This page imports no TensorFlow, so it shows within seconds;
the model page loads Keras when a model is chosen.
"""

import streamlit as st

from dashboard.loading import get_store
from dashboard.page import reviewer_mode, start_page
from dashboard.runs import RUNS_PAGE, SCAN_PAGE, run_label, show_runs_table
from dashboard.selection import MODEL_PAGE, choose, finished_scans, model_card, samples
from dashboard.text import plain
from nc_core.errors import NCError

start_page("Home", ":material/shield:")
st.title("Neural Cleanse dashboard")
st.markdown(
    "A **backdoored** image classifier behaves normally on clean images but switches to an "
    "attacker's chosen class whenever a small *trigger* (a sticker, a pixel pattern) appears in the "
    "image. **Neural Cleanse** looks for such a trigger without knowing it: for every class it finds "
    "the smallest patch that turns other images into that class. A backdoor target needs a far "
    "smaller patch than any other class, so its mask size stands out (an anomaly index above 2). "
    "This dashboard lets you load a Keras model and some clean images, reverse-engineer the trigger "
    "of one class, scan every class for a verdict, and keep and compare the runs."
)

available = samples()
if available:
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    picked = right.selectbox(
        "Sample",
        list(available),
        key="home_sample",
        format_func=lambda name: f"{name} · {(model_card(available[name]) or {}).get('dataset', '')}",
    )
    if left.button("Start with the sample", type="primary", icon=":material/play_arrow:", key="start_sample"):
        choose(available[picked])
        st.switch_page(MODEL_PAGE)
else:
    st.info("No sample models found in sample_models/ (rebuild them with sample_models/make_samples.py).")
st.page_link(MODEL_PAGE, label="…or bring your own model and data", icon=":material/upload_file:")

shipped = finished_scans()
if shipped:
    st.subheader("Finished scans of the samples")
    st.caption("Open a result at once (for a talk, say) while a live run works in the background.")
    columns = st.columns(len(shipped))
    for column, (name, bundle) in zip(columns, shipped.items()):
        if column.button(name, icon=":material/biotech:", key=f"open_scan_{name}", disabled=reviewer_mode()):
            try:
                run_id = get_store().import_bundle(bundle.read_bytes(), reuse=True)
            except NCError as error:
                st.error(plain(error))
            else:
                st.switch_page(SCAN_PAGE, query_params={"run": run_id})

st.subheader("Recent runs")
records = get_store().list_runs(limit=8)
if records:
    show_runs_table(records)
    for record in records[:5]:
        st.page_link(
            RUNS_PAGE, label=plain(run_label(record)), query_params={"run": record.id}, icon=":material/description:"
        )
else:
    st.caption("No runs yet: start with the sample above.")
st.page_link(RUNS_PAGE, label="All runs", icon=":material/folder_open:")
