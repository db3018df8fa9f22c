"""Runs as the pages list and start them: the runs table, and a run from the current selection.

The page that started a run keeps its id in ``st.session_state`` and in the URL (``?run=<id>``),
so a browser refresh finds the same run again.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dashboard.loading import get_store
from dashboard.selection import Selection
from dashboard.settings import RunSettings
from dashboard.text import format_seconds
from dashboard.uploads import run_data_path
from nc_core.errors import NCError
from nc_core.optimise.cluster import RayCluster
from nc_core.runs.spec import ScanSpec
from nc_core.runs.worker import submit_run

RUNS_PAGE = "pages/4_Runs.py"
SCAN_PAGE = "pages/3_Scan_and_compare.py"


def started_text(created: float) -> str:
    """A run's time as text; a damaged stored time shows as such instead of breaking the page."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(created))
    except (OverflowError, ValueError, OSError, TypeError):
        return "invalid time"


def run_label(record) -> str:
    """How a run is named in pickers: when, what, which kind, where it stands."""
    verdict = f" · {record.verdict}" if record.verdict and record.kind != "reverse" else ""
    imported = " · imported" if record.imported else ""
    return (
        f"{started_text(record.created)} · {record.kind} · {record.model} · {record.status}{verdict}{imported}"
        f" · {record.id}"
    )


def origin_text(record) -> str:
    """Where a run comes from: run here, or imported (when, from which exported run)."""
    if not record.imported:
        return "run here"
    return f"imported {started_text(record.imported)} from {record.origin or 'a bundle'}"


def _index_text(value) -> str:
    return "–" if value is None or value != value else f"{value:.2f}"


def runs_frame(records, detailed: bool = False) -> pd.DataFrame:
    """One row per run: what, status, verdict, anomaly index, when; settings when ``detailed``."""
    rows = []
    for record in records:
        config = record.settings.get("config", {})
        row = {
            "started": started_text(record.created),
            "model": record.model,
            "data": record.data,
            "kind": _kind_text(record),
            "status": record.status,
            "verdict": (record.verdict or "–") if record.kind != "reverse" else "–",
            "anomaly index": _index_text(record.anomaly_index) if record.kind != "reverse" else "–",
            "flagged": ", ".join(map(str, record.flagged)) if record.kind != "reverse" else "–",
            "duration": format_seconds((record.finished or time.time()) - record.created),
            "origin": origin_text(record),
        }
        if detailed:
            row.update(
                {
                    "epochs": config.get("epochs"),
                    "batch size": config.get("batch_size"),
                    "method": config.get("method"),
                    "engine": config.get("engine"),
                    "id": record.id,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _kind_text(record) -> str:
    """``scan``, ``reverse 3`` or ``repair of 1a2b3c`` (a repair's verdict is its re-scan's)."""
    if record.kind == "reverse":
        return f"reverse {', '.join(map(str, record.settings.get('classes') or []))}"
    if record.kind == "repair":
        return f"repair of {str(record.settings.get('source_run', '?'))[:6]}"
    return record.kind


def show_runs_table(records, detailed: bool = False) -> None:
    st.dataframe(
        runs_frame(records, detailed),
        hide_index=True,
        width="stretch",
        column_config={"anomaly index": st.column_config.NumberColumn(format="%.2f")},
    )


def start_run(
    kind: str, selection: Selection, inputs, names: list[str], run_settings: RunSettings, classes: list[int] | None
) -> str:
    """Validate the settings, then hand the run to a detached worker; return its id.

    Raises :class:`~nc_core.errors.NCError` with a sentence when the settings cannot run.
    """
    samples = len(inputs.data) if run_settings.max_samples is None else min(len(inputs.data), run_settings.max_samples)
    run_settings.config.validate(samples)
    if run_settings.ray is not None:
        RayCluster.parse(run_settings.ray)  # an operator's typo is refused here, not in the worker
    spec = ScanSpec(
        config=run_settings.config,
        rule=run_settings.rule,
        classes=None if classes is None else tuple(classes),
        pixel_range=inputs.data.pixel_range.label,
        max_samples=run_settings.max_samples,
        class_names=tuple(names),
        clean_accuracy=inputs.clean_accuracy,
        ray=run_settings.ray,
    )
    data_path = run_data_path(selection, inputs.data)
    return submit_run(
        get_store(),
        kind,
        selection.model_path,
        data_path,
        spec,
        display_names=(selection.model_label, selection.data_label),
    )


def remember_run(state_key: str, run_id: str) -> None:
    """Keep the page's run in session state and in the URL."""
    st.session_state[state_key] = run_id
    st.query_params["run"] = run_id


def page_run(state_key: str, kind: str):
    """The record of the run this page shows (from the URL first), or None."""
    run_id = st.query_params.get("run") or st.session_state.get(state_key)
    if not run_id:
        return None
    try:
        record = get_store().get(run_id)
    except NCError:
        record = None
    if record is None or record.kind != kind:
        st.session_state.pop(state_key, None)
        st.query_params.pop("run", None)
        return None
    remember_run(state_key, run_id)
    return record
