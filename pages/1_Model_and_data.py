"""Model and data: choose a sample or upload your own, and see what the scanner understood."""

from dataclasses import replace

import numpy as np
import streamlit as st

from dashboard.loading import class_names, load_selection, selection_inputs_or_stop
from dashboard.page import reviewer_mode, start_page
from dashboard.selection import choose, current, model_card, samples
from dashboard.text import class_label, plain
from dashboard.uploads import selection_from_uploads
from nc_core.errors import NCError
from nc_core.loading.pixels import NAMED_RANGES, PixelRange
from nc_core.reports.figures import balance_figure
from nc_core.reports.images import to_image

start_page("Model and data", ":material/upload_file:")
st.title("Model and data")
reviewer = reviewer_mode()
available = samples()
selection = current()
sample_paths = {s.model_path for s in available.values()}

sources = ["Shipped sample"] if reviewer else ["Shipped sample", "Upload your own"]
uploaded_selected = selection is not None and selection.model_path not in sample_paths and not reviewer
source = st.radio("Source", sources, index=1 if uploaded_selected else 0, horizontal=True, key="model_source")
if reviewer:
    st.info("Uploads and runs are disabled in reviewer mode.")
    st.page_link("pages/4_Runs.py", label="Open the stored runs", icon=":material/folder_open:")

if source == "Shipped sample":
    if not available:
        st.info("No sample models found in sample_models/.")
    else:
        sample_names = list(available)
        chosen_now = next(
            (name for name, sample in available.items() if selection and sample.model_path == selection.model_path),
            None,
        )
        picked = st.selectbox(
            "Sample",
            sample_names,
            index=sample_names.index(chosen_now) if chosen_now else None,
            placeholder="Choose a sample model",
            key="model_sample",
        )
        if picked is not None and (selection is None or selection.model_path != available[picked].model_path):
            selection = available[picked]
            choose(selection)
else:
    model_file = st.file_uploader("Model (.keras or .h5)", type=["keras", "h5", "hdf5"], key="upload_model")
    data_kind = st.radio(
        "Data", ["An .npz or a .zip of class folders", "A few images"], horizontal=True, key="upload_data_kind"
    )
    data_file, image_files, labels_text = None, [], None
    if data_kind == "A few images":
        image_files = st.file_uploader(
            "Images",
            type=["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"],
            accept_multiple_files=True,
            key="upload_images",
        )
        if (
            st.radio(
                "Their classes", ["All of one class", "One class per image"], horizontal=True, key="upload_label_mode"
            )
            == "All of one class"
        ):
            one_class = st.number_input("Class id", 0, 100_000, 0, key="upload_one_class")
            labels_text = ", ".join([str(one_class)] * len(image_files or []))
        else:
            labels_text = st.text_input("Class id of each image, in upload order (e.g. 3, 3, 7)", key="upload_labels")
    else:
        data_file = st.file_uploader(
            "Data: .npz with x (images) and y (labels), or .zip with one folder per class",
            type=["npz", "zip"],
            key="upload_data",
        )
    names_text = st.text_area("Class names (optional), one per line", key="upload_names", height=100)
    names_file = st.file_uploader("…or a text file of class names, one per line", type=["txt"], key="upload_names_file")
    if st.button("Use these files", type="primary", key="upload_use"):
        try:
            candidate = selection_from_uploads(
                model_file,
                data_file,
                image_files or [],
                labels_text,
                names_file.getvalue().decode("utf-8", "replace") if names_file else names_text,
            )
            with st.spinner("Loading the model and the data…"):
                load_selection(candidate)
        except NCError as error:
            st.error(plain(error))
        except Exception as error:  # an unreadable upload is reported, never a traceback
            st.error(f"Could not read the uploaded files: {plain(error)}")
        else:
            selection = candidate
            choose(selection)

if selection is None:
    st.info("Choose a sample or upload a model and its data.")
    st.stop()

inputs = selection_inputs_or_stop(selection)
guessed = load_selection(selection, guessed=True)
info, data = inputs.info, inputs.data
names = class_names(selection, inputs)

st.header(f"{plain(selection.model_label)} with {plain(selection.data_label)}")
columns = [*st.columns(3), *st.columns(3)]
columns[0].metric("Input shape", "×".join(map(str, info.input_shape)))
columns[1].metric("Classes", info.num_classes)
columns[2].metric("Parameters", f"{info.num_params:,}")
columns[3].metric(
    "Outputs",
    "probabilities" if info.outputs_probabilities else "logits",
    help=None if info.outputs_probabilities else "A softmax is added for the scan.",
)
columns[4].metric(
    "Clean accuracy",
    "–" if np.isnan(inputs.clean_accuracy) else f"{inputs.clean_accuracy:.1%}",
    help="Share of the labelled samples the model classifies right.",
)
columns[5].metric("Samples", f"{len(data):,}")
if not info.outputs_probabilities:
    st.caption("The model outputs logits; the scanner adds a softmax.")
if inputs.clean_accuracy < 0.5:
    st.warning(
        f"The model classifies only {inputs.clean_accuracy:.0%} of these samples right: check the pixel "
        "range and that the labels match the model's classes, or the scan's verdict means little."
    )
if data.skipped:
    st.caption(f"{data.skipped} files were skipped because they are not readable images.")

st.subheader("Pixel range")
how = "read from the values in the file" if guessed.data.range_from_data else "picked by accuracy on the images"
st.caption(f"Guessed: **{guessed.data.pixel_range.label}** ({how}). Change it if the model expects another range.")
if guessed.range_accuracies:
    st.dataframe(
        {"range": list(guessed.range_accuracies), "accuracy": list(guessed.range_accuracies.values())},
        column_config={"accuracy": st.column_config.NumberColumn(format="percent")},
        hide_index=False,
    )
options = [*NAMED_RANGES, "custom mean/std"]
now = data.pixel_range.label
range_key = f"pixel_range_{abs(hash((selection.model_path, selection.data_path)))}"
choice = st.selectbox(
    "Pixel range the model expects",
    options,
    key=range_key,
    index=options.index(now) if now in NAMED_RANGES else len(options) - 1,
)
wanted = choice
if choice == "custom mean/std":
    wanted = st.text_input(
        "Mean / std of unit-range pixels, per channel",
        value=now if now.startswith("meanstd:") else "meanstd:0.5/0.25",
        key=f"{range_key}_custom",
        help="For (pixel / 255 - mean) / std, e.g. meanstd:0.485,0.456,0.406/0.229,0.224,0.225",
    )
if wanted != now:
    try:
        label = PixelRange.parse(wanted).label
    except NCError as error:
        st.error(plain(error))
    else:
        choose(replace(selection, pixel_range=None if label == guessed.data.pixel_range.label else label))
        st.rerun()

card = model_card(selection)
if card:
    st.subheader("Model card")
    st.caption(
        f"{card.get('dataset', '')} · clean accuracy {card.get('clean_accuracy', float('nan')):.1%} · "
        f"attack success rate {card.get('attack_success_rate', float('nan')):.1%}"
    )
    with st.expander("Model card (JSON)"):
        st.json(card)

st.subheader("Classes")
counts = data.class_counts()
left, right = st.columns([2, 3])
left.dataframe(
    {"class": list(range(len(names))), "name": names, "samples": [counts.get(k, 0) for k in range(len(names))]},
    hide_index=True,
    height=300,
    width="stretch",
)
right.plotly_chart(balance_figure(counts, names), key="balance")

st.subheader("Sample images")
present = list(counts)
FIRST = "First 8 classes"
shown = st.selectbox(
    "Show", [FIRST, *present], key="sample_class", format_func=lambda k: k if k == FIRST else class_label(k, names)
)
scale = max(1, 64 // info.input_shape[0])
for class_id in present[:8] if shown == FIRST else [shown]:
    picks = np.flatnonzero(data.y == class_id)[: 10 if shown == FIRST else 40]
    st.markdown(f"**{plain(class_label(class_id, names))}**")
    st.image([to_image(x, scale) for x in data.x[picks]], width=64)

st.divider()
left, right = st.columns(2)
left.page_link("pages/2_Reverse_engineer.py", label="Reverse-engineer one class", icon=":material/search:")
right.page_link("pages/3_Scan_and_compare.py", label="Scan every class", icon=":material/biotech:")
