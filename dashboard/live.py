"""Live view of a background run: where it stands, how long is left, its curves, and Cancel.

The worker writes progress into the run store; this fragment reads it once a second, so the page
script itself stays short and a refresh or a second viewer sees the same run.
"""
from __future__ import annotations

import streamlit as st

from nc_core.figures import curves_figure
from dashboard.loading import get_store


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _class_text(progress: dict, names: list[str]) -> str:
    target = progress["target"]
    name = names[target] if target < len(names) else str(target)
    return f"class {target} · {name}"


def progress_view(record, can_cancel: bool) -> None:
    """Progress bars (overall and current class), ETA, live curves and the cancel button."""
    progress = record.progress
    names = record.settings.get("class_names") or []
    if record.status == "queued" or not progress.get("kind"):
        st.progress(0.0, text="Starting the worker: loading TensorFlow, the model and the data…")
    else:
        fraction = float(progress["fraction"])
        elapsed = float(progress["elapsed"])
        left = elapsed / fraction * (1 - fraction) if fraction > 0 else None
        total = progress["num_classes"]
        where = _class_text(progress, names)
        planned = len(record.settings.get("classes") or names) or total
        if progress["class_index"] >= planned:
            where = f"Confirming a flagged class from a fresh start ({where}), step {progress['class_index'] + 1} of {total}"
        elif total > 1:
            where = f"Class {progress['class_index'] + 1} of {planned} ({where})"
        epoch_text = f"epoch {progress['epoch']} of at most {progress['max_epochs']}"
        step_text = f"step {progress['step']}/{progress['steps_per_epoch']}"
        st.markdown(f"**{where}** · {epoch_text} · {step_text}")
        st.progress(min(fraction, 1.0),
                    text=f"Overall {fraction:.0%} · {format_seconds(elapsed)} elapsed · "
                         f"at most {format_seconds(left)} left (early stop usually ends sooner)")
        if total > 1:
            st.progress(min(progress["epoch"] / max(progress["max_epochs"], 1), 1.0),
                        text=f"This class: {epoch_text}")
    curves = progress.get("curves") or []
    if curves:
        st.plotly_chart(curves_figure(curves, height=360), key=f"live_curves_{record.id}")
    if not can_cancel:
        return
    if record.cancel_requested:
        st.warning("Cancelling: the worker stops within a step; finished classes are kept.")
    else:
        st.button("Cancel run", key=f"cancel_{record.id}", icon=":material/stop_circle:",
                  on_click=get_store().request_cancel, args=(record.id,))


@st.fragment(run_every=1)
def live_run(run_id: str, can_cancel: bool) -> None:
    """Poll the run every second; when it ends, rerun the page so it shows the results."""
    record = get_store().get(run_id)
    if not record.active:
        st.rerun()
    st.caption(f"Run {record.id} · {record.model} on {record.data} · {record.status}")
    progress_view(record, can_cancel)
