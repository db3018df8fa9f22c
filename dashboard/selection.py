"""The model and data the user chose, kept in ``st.session_state``, and the shipped samples.

Every page reads the same :class:`Selection`; the model page is the only one that sets it (and
the home page's "Start with the sample" button).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

SELECTION = "selection"
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "sample_models"  # NC_SAMPLES_DIR overrides
DEFAULT_SAMPLE = "signs_backdoored"
MODEL_PAGE = "pages/1_Model_and_data.py"


@dataclass(frozen=True)
class Selection:
    """Paths to a model and its data, how to name them, and what the user overrode.

    ``pixel_range`` is a :class:`~nc_core.loading.pixels.PixelRange` label the user picked (None: the
    one guessed); ``class_names`` are names the user typed (None: the data's own);
    ``images`` marks a folder of individually uploaded images (see :mod:`dashboard.uploads`).
    """

    model_path: str
    data_path: str
    model_label: str
    data_label: str
    pixel_range: str | None = None
    class_names: tuple[str, ...] | None = None
    card_path: str | None = None
    images: bool = False


def current() -> Selection | None:
    return st.session_state.get(SELECTION)


def choose(selection: Selection) -> None:
    st.session_state[SELECTION] = selection


def require_selection() -> Selection:
    """The current selection; without one, say where to make it and stop the page."""
    selection = current()
    if selection is None:
        st.info("Choose a model and its data first.")
        st.page_link(MODEL_PAGE, label="Choose a model and data", icon=":material/upload_file:")
        st.stop()
    return selection


def samples() -> dict[str, Selection]:
    """The shipped sample models whose data file is present, the default sample first."""
    folder = Path(os.environ.get("NC_SAMPLES_DIR") or SAMPLES_DIR)
    found = {}
    for model in sorted(folder.glob("*.keras")):
        card = model.with_suffix(".json")
        data_file = f"{model.stem.split('_')[0]}_data.npz"
        if card.exists():
            data_file = json.loads(card.read_text()).get("data_file", data_file)
        data = folder / data_file
        if data.exists():
            found[model.stem] = Selection(
                str(model),
                str(data),
                model.name,
                data.name,
                card_path=str(card) if card.exists() else None,
            )
    return dict(sorted(found.items(), key=lambda item: item[0] != DEFAULT_SAMPLE))


def finished_scans() -> dict[str, Path]:
    """The shipped finished scans (``<sample>_scan.zip``, made by ``make_samples.py``), by sample."""
    folder = Path(os.environ.get("NC_SAMPLES_DIR") or SAMPLES_DIR)
    return {path.name.removesuffix("_scan.zip"): path for path in sorted(folder.glob("*_scan.zip"))}


def model_card(selection: Selection) -> dict | None:
    """The sample's model card (dataset, trigger, target, accuracies), when it has one."""
    if selection.card_path is None or not Path(selection.card_path).exists():
        return None
    return json.loads(Path(selection.card_path).read_text())
