"""Repair in the dashboard: the action under a finished scan, and a repair run's before/after view.

The page only gathers settings and shows stored figures; :mod:`nc_core.repair` does the work in a
background run (:func:`nc_core.runs.worker.submit_repair`), so a refresh or a closed tab loses
nothing, and its re-scan is shown like any scan.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.loading import get_store
from dashboard.selection import SAMPLES_DIR
from dashboard.text import plain
from nc_core.errors import NCError
from nc_core.repair.config import REPAIR_METHODS, RepairConfig
from nc_core.repair.core import RepairResult
from nc_core.reports.figures import repair_figure
from nc_core.runs.repair_job import card_for_sample
from nc_core.runs.worker import submit_repair

REPAIR_PAGE = "pages/5_Repair.py"


def repair_action(record, report) -> None:
    """A form under a finished scan: repair the model it scanned (forced when nothing was flagged)."""
    default = RepairConfig()
    flagged = report is not None and report.verdict == "backdoored"
    st.subheader("Repair this model")
    st.caption(
        f"Unlearning fine-tunes a copy of the model on {1 - default.holdout_share:.0%} of this scan's data, "
        f"{default.stamp_share:.0%} of it stamped with the reversed trigger(s) and labelled with the true class, "
        "then re-scans it; the other part is held out for the before/after figures."
        if flagged
        else "The scan flagged nothing. A forced repair unlearns the class with the smallest mask only if it "
        "still stands out; otherwise the model is left as it was."
    )
    with st.form(f"repair_form_{record.id}"):
        left, middle, right = st.columns(3)
        method = left.selectbox(
            "Method",
            REPAIR_METHODS,
            key=f"repair_method_{record.id}",
            help="unlearning: the paper's fine-tune. pruning: silence the units the trigger excites.",
        )
        epochs = middle.number_input("Epochs per round", 1, 1000, default.epochs, key=f"repair_epochs_{record.id}")
        rounds = right.number_input("Rounds (at most)", 1, 20, default.max_rounds, key=f"repair_rounds_{record.id}")
        force = True if flagged else st.checkbox("Repair anyway", key=f"repair_force_{record.id}")
        submitted = st.form_submit_button("Repair", icon=":material/healing:", key=f"repair_submit_{record.id}")
    if submitted:
        config = default.replace(method=method, epochs=int(epochs), max_rounds=int(rounds))
        try:
            run_id = submit_repair(get_store(), record.id, config, force=force, trigger_card=_card(record))
        except NCError as error:
            st.error(plain(error))
        else:
            st.switch_page(REPAIR_PAGE, query_params={"run": run_id})


def _card(record) -> dict | None:
    """The shipped sample's card when the scanned model is that very file (its real trigger is measured)."""
    samples = Path(os.environ.get("NC_SAMPLES_DIR") or SAMPLES_DIR)
    card = card_for_sample(samples, record.model)
    scanned = get_store().run_dir(record.id) / "inputs" / (record.spec.model_file or "-")
    try:
        same = card is not None and scanned.read_bytes() == (samples / record.model).read_bytes()
    except OSError:
        same = False
    return card if same else None


def repair_results(record) -> None:
    """A repair run's figures: before/after on held-out data, the rounds, the repaired model."""
    store = get_store()
    payload = store.load_repair(record.id)
    if payload is None:
        st.info("The repair did not finish, so there are no figures.")
        return
    result = RepairResult.from_dict(payload)
    st.subheader("Before and after, on held-out samples")
    st.caption(
        f"{plain(result.method)} of class(es) {', '.join(map(str, result.targets))} · "
        f"{result.samples_tuned} samples fine-tuned on, {result.samples_held_out} held out · "
        f"{result.seconds:.1f} s · source scan {plain(record.spec.source_run or '?')}"
    )
    if not result.within_budget:
        st.warning(
            f"The repair cost {result.accuracy_drop:.1%} of clean accuracy on the held-out samples, more than "
            f"its budget of {float(result.config.get('max_accuracy_drop', 0.05)):.1%}: check the figures "
            "before using the repaired model."
        )
    rows = result.table()
    frame = pd.DataFrame(rows).rename(columns={"figure": "figure"})
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "before": st.column_config.NumberColumn(format="percent"),
            "after": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.plotly_chart(repair_figure(rows), key=f"repair_chart_{record.id}")
    removed = [r for r in result.rounds if r.removed]
    if removed:
        st.caption(
            "Triggers removed: "
            + "; ".join(f"round {r.round + 1}, class {r.target}, mask {r.l1:.1f} px" for r in removed)
            + f". A later trigger of at least {result.bound:.1f} px no longer stands out, which ends the rounds."
        )
    else:
        st.caption(f"Nothing stood out (every mask at least {result.bound:.1f} px): the model was left as it was.")
    path = store.repaired_model_path(record.id)
    if path is not None:
        st.download_button(
            "Download the repaired model (.keras)",
            path.read_bytes,
            file_name=f"{Path(record.model).stem}_repaired.keras",
            mime="application/octet-stream",
            icon=":material/download:",
            key=f"repair_download_{record.id}",
            on_click="ignore",
        )
    if result.rescan:
        st.markdown(
            f"**Re-scan of the repaired model: {plain(result.rescan.verdict)}** "
            f"(score {result.rescan.score:.2f}; the scan's own settings). Its details follow."
        )
