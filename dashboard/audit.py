"""The Audit page's pieces: start an audit from an uploaded zip, follow it, show its figures.

Everything shown comes from :func:`nc_core.audit.runner.load_audit` (rows filled from the runs of
the store, metrics computed by the library), so the table, the CSV and the CLI's JSON agree.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.loading import get_store
from dashboard.text import plain
from nc_core.audit.metrics import roc_points
from nc_core.errors import NCError
from nc_core.reports.figures import roc_figure

RUNS_PAGE_URL = "/Runs?run="


def start_form() -> str | None:
    """Upload a zip of models with their data (and a manifest), start the audit; its id or None."""
    from nc_core.audit.background import submit_audit, unpack_audit_zip
    from nc_core.optimise.config import CleanseConfig

    with st.form("audit_form"):
        upload = st.file_uploader(
            "Models with their data (.zip: a manifest.csv of model,data,label,targets, "
            "or models sharing one data file)",
            type=["zip"],
            key="audit_upload",
        )
        epochs = st.number_input("Epochs (at most) per class", 1, 100_000, CleanseConfig().epochs, key="audit_epochs")
        submitted = st.form_submit_button("Start audit", icon=":material/play_arrow:", key="audit_submit")
    if not submitted:
        return None
    if upload is None:
        st.error("Choose a zip of models first.")
        return None
    try:
        store = get_store()
        return submit_audit(store, unpack_audit_zip(upload.getvalue(), store, upload.name), epochs=int(epochs))
    except NCError as error:
        st.error(plain(error))
    return None


def rows_frame(result) -> pd.DataFrame:
    """One row per model, as the CLI's JSON has them, with a link to open its scan."""
    return pd.DataFrame(
        [
            {
                "model": row.model,
                "label": row.label or "–",
                "verdict": row.verdict or row.status,
                "flagged": ", ".join(map(str, row.flagged)) or "–",
                "score": row.score,
                "anomaly index": row.anomaly_index,
                "seconds": row.seconds,
                "scan": f"{RUNS_PAGE_URL}{row.run_id}" if row.run_id else None,
                "error": row.error or "",
            }
            for row in result.rows
        ]
    )


def show_audit(result) -> None:
    """Progress while it runs, the table (CSV download), and with labels the ROC curve and confusion."""
    finished = sum(row.verdict is not None or row.status in ("failed", "missing") for row in result.rows)
    st.caption(f"Audit {result.audit_id} · {len(result.rows)} models · {plain(result.status)}")
    if result.status == "running":
        st.progress(finished / max(len(result.rows), 1), text=f"{finished} of {len(result.rows)} models scanned")
    elif result.status == "interrupted":
        st.warning(
            "The audit's driver stopped before it finished. Start the same audit again to resume it: "
            "finished models are kept."
        )
    frame = rows_frame(result)
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "score": st.column_config.NumberColumn(format="%.2f"),
            "anomaly index": st.column_config.NumberColumn(format="%.2f"),
            "seconds": st.column_config.NumberColumn(format="%.1f"),
            "scan": st.column_config.LinkColumn("scan", display_text="open"),
        },
    )
    st.download_button(
        "Download the table (.csv)",
        frame.to_csv(index=False),
        file_name=f"audit_{result.audit_id}.csv",
        mime="text/csv",
        icon=":material/download:",
        key=f"audit_csv_{result.audit_id}",
        on_click="ignore",
    )
    metrics = result.metrics
    if not metrics["models"]:
        return
    columns = st.columns(4)
    columns[0].metric("Accuracy", f"{metrics['accuracy']:.0%}")
    columns[1].metric("Backdoored, exact targets", f"{metrics['backdoored_exact']} of {metrics['backdoored']}")
    columns[2].metric("Clean flagged", f"{metrics['false_positives']} of {metrics['clean']}")
    columns[3].metric("ROC-AUC", f"{metrics['roc_auc']:.3f}")
    scores = {
        label: [r.score for r in result.rows if r.label == label and r.verdict] for label in ("backdoored", "clean")
    }
    fpr, tpr = roc_points(scores["backdoored"], scores["clean"])
    if fpr:
        st.plotly_chart(roc_figure(fpr, tpr, metrics["roc_auc"]), key=f"audit_roc_{result.audit_id}")
    st.dataframe(pd.DataFrame(metrics["confusion"]).T.rename_axis("label \\\\ verdict"), width="stretch")
