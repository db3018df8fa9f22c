"""Cached loads: a selection's model and data, a run's own inputs, and the run store.

Loads are keyed on the files' contents (a SHA-256, itself cached per path, size and mtime), so
page reruns reuse the loaded model, a rebuilt sample is read again, and a run's copy of its
inputs shares the entry of the files it was started from. Errors are not cached: fixing the file
and trying again works.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from dashboard.selection import Selection
from dashboard.text import plain
from dashboard.uploads import LABELS_FILE, read_images
from nc_core.errors import NCError
from nc_core.loading.data import load_images
from nc_core.loading.pixels import PixelRange
from nc_core.runs.store import RunStore, default_data_dir


@st.cache_data(show_spinner=False, max_entries=64)
def _file_digest(path: str, mtime: float, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_key(path: str | Path) -> str:
    """The file's SHA-256 (its path when it does not exist, so the loader reports that)."""
    path = Path(path)
    if not path.is_file():
        return str(path)
    stat = path.stat()
    return _file_digest(str(path), stat.st_mtime, stat.st_size)


@st.cache_resource(show_spinner=False)
def _store(root: str) -> RunStore:
    return RunStore(root)


def get_store() -> RunStore:
    """The run store in ``$NC_DATA_DIR`` (default ``./nc_data``); stops the page if unusable."""
    try:
        return _store(str(default_data_dir()))
    except NCError as error:
        st.error(plain(error))
        st.stop()


@st.cache_resource(show_spinner=False, max_entries=6)
def _load_files(
    model_key: str, data_key: str, pixel_range: str | None, max_samples: int | None, _model_path: str, _data_path: str
):
    from nc_core.loading.inputs import load_inputs

    return load_inputs(_model_path, _data_path, pixel_range, max_samples)


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_images(model_key: str, labels_key: str, pixel_range: str | None, _model_path: str, _folder: str):
    from nc_core.loading.inputs import prepare
    from nc_core.loading.models import inspect_model, load_model

    model = load_model(_model_path)
    height, width, channels = inspect_model(model).input_shape
    files, labels = read_images(Path(_folder))
    data = load_images(files, (height, width), channels, labels)
    return prepare(model, data, Path(_model_path).name, PixelRange.parse(pixel_range) if pixel_range else None)


def load_selection(selection: Selection, guessed: bool = False):
    """The selection's :class:`~nc_core.loading.inputs.ScanInputs`, under the user's pixel range.

    ``guessed=True`` gives them under the range the loader settled on by itself, to show what
    was guessed next to what the user picked. Raises :class:`~nc_core.errors.NCError`.
    """
    pixel_range = None if guessed else selection.pixel_range
    model_key = content_key(selection.model_path)
    if selection.images:
        labels_key = content_key(Path(selection.data_path) / LABELS_FILE)
        return _load_images(model_key, labels_key, pixel_range, selection.model_path, selection.data_path)
    return _load_files(
        model_key, content_key(selection.data_path), pixel_range, None, selection.model_path, selection.data_path
    )


def load_run_inputs(record):
    """The model and data a run was started with (copied into its folder), or None if absent.

    Imported bundles carry no inputs; a run whose inputs cannot be read also gives None, since
    its stored results can still be shown. When the run's range is the one the loader guesses,
    this is the very entry the model page loaded.
    """
    spec = record.scan_spec
    folder = default_data_dir() / "runs" / record.id / "inputs"
    model, data = folder / (spec.model_file or "-"), folder / (spec.data_file or "-")
    if record.kind == "repair":  # its samples are shown through the repaired model
        model = folder.parent / "repaired.keras"
    if not (model.exists() and data.exists()):
        return None
    keys = (content_key(model), content_key(data))
    paths = (str(model), str(data))
    try:
        with st.spinner("Loading the run's model and data for the sample previews…"):
            inputs = _load_files(*keys, None, spec.max_samples, *paths)
            if spec.pixel_range and inputs.data.pixel_range.label != spec.pixel_range:
                inputs = _load_files(*keys, spec.pixel_range, spec.max_samples, *paths)
            return inputs
    except Exception:  # the run's results stand on their own; samples are an extra
        return None


def run_samples(record):
    """Each class's triggered samples for a run's result view: those the scan stored with the
    run, else (runs made before samples were stored) made from the run's own model and data,
    else None.

    The result view calls it once per run, ``show_run(record, report, run_samples(record), key="runs")``:

    >>> samples_for = run_samples(record)
    >>> samples_for(result).caption(0, triggered=True)
    '0 → 7 (100%)'
    """
    store = get_store()

    def samples_for(result):
        stored = store.stored_samples(record.id, result.target)
        if stored is not None:
            return stored
        inputs = load_run_inputs(record)
        if inputs is None:
            return None
        from nc_core.detection.samples import triggered_samples

        return triggered_samples(inputs.classifier, inputs.data, result)

    return samples_for


def selection_inputs_or_stop(selection: Selection):
    """Load the selection with a spinner; on failure show the reason and stop the page."""
    try:
        with st.spinner(f"Loading {selection.model_label} and {selection.data_label}…"):
            return load_selection(selection)
    except NCError as error:
        st.error(plain(error))
    except Exception as error:  # an unexpected failure on a user's file is still a message
        st.error(f"Could not read {plain(selection.model_label)} with {plain(selection.data_label)}: {plain(error)}")
    st.stop()


def class_names(selection: Selection, inputs) -> list[str]:
    """The names shown for the model's classes: typed ones, the data's, or the class ids."""
    count = inputs.info.num_classes
    given = list(selection.class_names or inputs.data.class_names or [])
    return [given[k] if k < len(given) else str(k) for k in range(count)]
