"""Live view of a background run: where it stands, how long is left, its curves, and Cancel.

The worker writes progress into the run store; this fragment reads it once a second, so the page
script itself stays short and a refresh or a second viewer sees the same run. A scan also shows
what it found so far: the class being optimised (its mask and pattern, about every epoch), and
the L1 chart and trigger grid of the classes finished, growing as each one ends.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.loading import get_store
from dashboard.text import class_label, format_seconds, plain
from nc_core.detection.report import make_report
from nc_core.reports.figures import curves_figure, l1_figure
from nc_core.reports.images import scale_for, trigger_images

#: Side in pixels of the current class's live mask and pattern.
LIVE_SIDE = 160


def _class_text(progress: dict, names: list[str]) -> str:
    target = progress["target"]
    name = names[target] if target < len(names) else str(target)
    return f"class {target} · {name}"


def progress_view(record, can_cancel: bool) -> None:
    """Progress bars (overall and current class), ETA, live curves and the cancel button."""
    progress = record.progress
    names = list(record.scan_spec.class_names)
    if record.status == "queued" or not progress.get("kind"):
        st.progress(0.0, text="Starting the worker: loading TensorFlow, the model and the data…")
    elif progress["kind"] == "repair":
        fraction, elapsed = float(progress["fraction"]), float(progress["elapsed"])
        st.markdown(f"**Repairing the model: {plain(progress.get('message', ''))}**")
        st.progress(
            min(fraction, 1.0),
            text=f"Overall {fraction:.0%} · {format_seconds(elapsed)} elapsed · "
            "the re-scan of the repaired model follows",
        )
    else:
        fraction = float(progress["fraction"])
        elapsed = float(progress["elapsed"])
        left = elapsed / fraction * (1 - fraction) if fraction > 0 else None
        total = progress["num_classes"]
        where = _class_text(progress, names)
        planned = len(record.scan_spec.classes or names) or total
        phase = progress.get("phase") or ("confirm" if progress["class_index"] >= planned else "full")
        if phase == "screen":
            where = f"Screening every class: {progress['class_index'] + 1} of {planned} ({where})"
        elif phase == "confirm":
            where = (
                f"Confirming a close call from a fresh start ({where}), run {progress['class_index'] + 1} of {total}"
            )
        elif progress["class_index"] >= planned:
            where = f"Full schedule for a class that matters ({where}), run {progress['class_index'] + 1} of {total}"
        elif total > 1:
            where = f"Class {progress['class_index'] + 1} of {planned} ({where})"
        if progress.get("stage") == "rescan":
            where = f"Re-scanning the repaired model: {where}"
        epoch_text = f"epoch {progress['epoch']} of at most {progress['max_epochs']}"
        step_text = f"step {progress['step']}/{progress['steps_per_epoch']}"
        st.markdown(f"**{plain(where)}** · {epoch_text} · {step_text}")
        st.progress(
            min(fraction, 1.0),
            text=f"Overall {fraction:.0%} · {format_seconds(elapsed)} elapsed · "
            f"at most {format_seconds(left)} left (early stop usually ends sooner)",
        )
        if total > 1:
            st.progress(min(progress["epoch"] / max(progress["max_epochs"], 1), 1.0), text=f"This class: {epoch_text}")
    curves = progress.get("curves") or []
    if curves:
        st.plotly_chart(curves_figure(curves, height=360), key=f"live_curves_{record.id}")
    if not can_cancel:
        return
    if record.cancel_requested:
        st.warning("Cancelling: the worker stops within a step; finished classes are kept.")
    else:
        st.button(
            "Cancel run",
            key=f"cancel_{record.id}",
            icon=":material/stop_circle:",
            on_click=get_store().request_cancel,
            args=(record.id,),
        )


@st.fragment(run_every=1)
def live_run(run_id: str, can_cancel: bool) -> None:
    """Poll the run every second; when it ends, rerun the page so it shows the results."""
    record = get_store().get(run_id)
    if not record.active:
        st.rerun()
    st.caption(f"Run {record.id} · {plain(record.model)} on {plain(record.data)} · {plain(record.status)}")
    progress_view(record, can_cancel)
    if record.kind in ("scan", "repair"):
        scan_so_far(record)


def scan_so_far(record) -> None:
    """The class being optimised now, then the classes finished so far, as they fill in."""
    from dashboard.results import margin_evidence, trigger_grid

    store = get_store()
    names = list(record.scan_spec.class_names)
    live = store.live_trigger(record.id)
    if live is not None:
        target, epoch, mask, pattern = live
        pictures = trigger_images(mask, pattern, scale_for(max(pattern.shape[:2]), LIVE_SIDE))
        st.image(
            [pictures["mask"], pictures["pattern"], pictures["fusion"]],
            width=LIVE_SIDE,
            caption=[f"{class_label(target, names)}: mask at epoch {epoch}", "pattern", "mask × pattern"],
        )
    results = _finished_classes(store, record.id)
    margin = store.margin_result(record.id)
    if margin is not None and not results:
        st.caption(
            f"Max-margin test done ({margin.seconds:.1f} s): "
            + (
                f"class {margin.flagged[0]} answers abnormally hard."
                if margin.flagged
                else "no class answers abnormally hard."
            )
            + " Neural Cleanse is running."
        )
    if not results:
        return
    report = make_report(
        results, record.model, record.data, rule=record.scan_spec.rule, class_names=names, margin=margin
    )
    st.subheader(f"So far: {len(results)} class(es) finished")
    st.plotly_chart(l1_figure(report, names, height=320), key=f"live_l1_{record.id}")
    margin_evidence(report, names, f"live_{record.id}")
    trigger_grid(report, names)


def _finished_classes(store, run_id: str) -> list:
    """The run's finished classes, read again only when a class file changed (once a second at most)."""
    folder = Path(store.run_dir(run_id)) / "classes"
    try:
        signature = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.json")))
    except OSError:
        return []
    cache = st.session_state.setdefault("_live_classes", {})
    if cache.get(run_id, (None,))[0] != signature:
        cache[run_id] = (signature, store.class_results(run_id))
    return cache[run_id][1]
