"""What the reverse-engineer and scan pages share: their opening, starting a run, showing it.

Both pages are "settings form -> background run -> live view -> result"; only the form differs,
so each page keeps its form and calls these three steps around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard.live import live_run
from dashboard.loading import class_names, get_store, run_samples, selection_inputs_or_stop
from dashboard.page import reviewer_mode, runs_disabled_notice, start_page
from dashboard.results import show_run
from dashboard.runs import page_run, remember_run, start_run
from dashboard.selection import Selection, current, require_selection
from dashboard.settings import RunSettings
from dashboard.text import plain
from nc_core.errors import NCError


@dataclass
class RunPage:
    """The page's selection, its loaded inputs and class names, and the run it shows (if any)."""

    kind: str
    state_key: str
    selection: Selection | None
    inputs: object
    names: list[str]
    record: object | None

    @property
    def busy(self) -> bool:
        return self.record is not None and self.record.active


def open_run_page(title: str, icon: str, kind: str) -> RunPage:
    """Page set-up, reviewer-mode stop, the current selection and the page's run.

    A page opened on ``?run=<id>`` (a refresh, a shared link, a second viewer) shows that run,
    live or finished, even when no model is selected in this session; only starting a new run
    needs a selection.
    """
    start_page(title, icon)
    st.title(title)
    if reviewer_mode():
        runs_disabled_notice()
        st.stop()
    state_key = f"{kind}_run"
    record = page_run(state_key, kind)
    if current() is None and record is not None:
        st.caption(
            f"Run {record.id}: {plain(record.model)} on {plain(record.data)}. Choose a model and its data to start a new run."  # noqa: E501
        )
        show_page_run(RunPage(kind, state_key, None, None, [], record), "")
        st.stop()
    selection = require_selection()
    inputs = selection_inputs_or_stop(selection)
    return RunPage(kind, state_key, selection, inputs, class_names(selection, inputs), record)


def submit(page: RunPage, run_settings: RunSettings, classes: list[int] | None) -> None:
    """Start the run and rerun the page onto it, or show why it cannot start."""
    try:
        remember_run(
            page.state_key, start_run(page.kind, page.selection, page.inputs, page.names, run_settings, classes)
        )
    except NCError as error:
        st.error(plain(error))
    else:
        st.rerun()


def show_page_run(page: RunPage, idle_hint: str) -> None:
    """The hint before any run, the live view while one works, its result once it ended."""
    record = page.record
    if record is None:
        st.caption(idle_hint)
    elif record.active:
        live_run(record.id, can_cancel=True)
    else:
        show_run(record, get_store().load_report(record.id), run_samples(record), key=page.kind)
