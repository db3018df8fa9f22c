"""Plotly figures of runs: optimisation curves, L1 per class with the detection lines, balance.

Pure functions from results to figures: the dashboard places them, the HTML report embeds them.
Plotly draws a subset of HTML in every text (``<b>``, ``<a href>``, ``<br>``), so each name that
comes from a user or a bundle goes through :func:`figure_text` first.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

SCREENED = "#c7c7c7"
FLAGGED = "#d62728"
NORMAL = "#7f7f7f"
CURVES = (("loss", "Loss (CE + λ·L1)"), ("asr", "Attack success (train)"), ("l1", "Mask L1"), ("lam", "λ (L1 weight)"))


def figure_text(value: object) -> str:
    """``value`` as literal text in a Plotly label: a class named ``<a href=...>`` shows those characters.

    >>> figure_text("<b>cat</b>")
    '&lt;b&gt;cat&lt;/b&gt;'
    """
    return html.escape(str(value), quote=False)


def _class_name(row, names: list[str]) -> str:
    return figure_text(names[row.class_id] if row.class_id < len(names) else row.name)


def curves_figure(records: list[dict], height: int = 420) -> go.Figure:
    """Loss, ASR, mask L1 and lambda per epoch, from ``EpochRecord``-shaped dicts."""
    figure = make_subplots(
        rows=2, cols=2, subplot_titles=[title for _, title in CURVES], horizontal_spacing=0.08, vertical_spacing=0.16
    )
    epochs = [r["epoch"] for r in records]
    for index, (key, title) in enumerate(CURVES):
        figure.add_trace(
            go.Scatter(x=epochs, y=[r[key] for r in records], mode="lines+markers", name=title, marker={"size": 4}),
            row=index // 2 + 1,
            col=index % 2 + 1,
        )
    figure.update_yaxes(range=[0, 1.02], row=1, col=2)
    figure.update_xaxes(title_text="epoch", row=2)
    figure.update_layout(height=height, showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def _budget_note(row) -> str:
    """How far a class ran, as its bar's hover text says it."""
    if row.probe_only:
        return "probed only: not judged"
    return "full schedule" if row.full_schedule else f"screened only: mask L1 {row.l1:.1f}, scaled"


def l1_figure(report, names: list[str], height: int = 380) -> go.Figure:
    """Mask L1 per class as the rule judged it, flagged classes in red, screened ones pale, with the
    median and detection-threshold lines (a screened class's bar is its L1 scaled to the full schedule)."""
    rows = report.rows
    figure = go.Figure(
        go.Bar(
            x=[str(row.class_id) for row in rows],
            y=[row.judged_l1 for row in rows],
            marker_color=[FLAGGED if row.flagged else NORMAL if row.full_schedule else SCREENED for row in rows],
            customdata=[
                [
                    _class_name(row, names),
                    row.anomaly_index,
                    row.score,
                    row.compactness,
                    row.boundary,
                    _budget_note(row),
                ]
                for row in rows
            ],
            hovertemplate="class %{x} · %{customdata[0]}<br>L1 %{y:.1f} (%{customdata[5]})<br>score %{customdata[2]:.2f} · "  # noqa: E501
            "compactness %{customdata[3]:.2f} · boundary %{customdata[4]:.2f}<br>"
            "anomaly index (paper) %{customdata[1]:.2f}<extra></extra>",
        )
    )
    label = {"annotation_bgcolor": "rgba(255, 255, 255, 0.85)", "annotation_font_size": 12}
    figure.add_hline(
        y=report.median,
        line_dash="dash",
        line_color="#1f77b4",
        **label,
        annotation_text=f"median {report.median:.1f}",
        annotation_position="top right",
    )
    figure.add_hline(
        y=report.detection_l1,
        line_dash="dot",
        line_color=FLAGGED,
        **label,
        annotation_text=f"compact masks flagged below {report.detection_l1:.1f}",
        annotation_position="bottom right",
    )
    if report.extreme_l1 < report.detection_l1:
        figure.add_hline(
            y=report.extreme_l1,
            line_dash="dot",
            line_color="#7f7f7f",
            **label,
            annotation_text=f"any mask flagged below {report.extreme_l1:.1f}",
            annotation_position="bottom left",
        )
    figure.update_layout(
        height=height,
        xaxis_title="class",
        yaxis_title="mask L1 (pixels)",
        xaxis_type="category",
        margin={"l": 70, "r": 10, "t": 30, "b": 10},
    )
    figure.update_yaxes(automargin=True)
    return figure


def margin_figure(report, names: list[str], height: int = 320) -> go.Figure:
    """The max-margin test per class: the largest logit margin any valid input reaches, flagged
    classes in red, with the median (a backdoor target stands far above the rest)."""
    rows = report.rows
    figure = go.Figure(
        go.Bar(
            x=[str(row.class_id) for row in rows],
            y=[row.margin for row in rows],
            marker_color=[FLAGGED if "max-margin" in row.flagged_by else NORMAL for row in rows],
            customdata=[[_class_name(row, names), row.margin_ratio, row.margin_p] for row in rows],
            hovertemplate="class %{x} · %{customdata[0]}<br>max margin %{y:.1f} (%{customdata[1]:.2f} of the median)"
            "<br>p-value %{customdata[2]:.2g}<extra></extra>",
        )
    )
    margins = sorted(row.margin for row in rows)
    if margins:
        median = margins[len(margins) // 2] if len(margins) % 2 else sum(margins[len(margins) // 2 - 1 :][:2]) / 2
        figure.add_hline(
            y=median,
            line_dash="dash",
            line_color="#1f77b4",
            annotation_text=f"median {median:.1f}",
            annotation_position="top right",
            annotation_bgcolor="rgba(255, 255, 255, 0.85)",
        )
    figure.update_layout(
        height=height,
        xaxis_title="class",
        yaxis_title="max logit margin",
        xaxis_type="category",
        margin={"l": 70, "r": 10, "t": 30, "b": 10},
    )
    figure.update_yaxes(automargin=True)
    return figure


def compare_l1_figure(reports: list, labels: list[str], height: int = 380) -> go.Figure:
    """L1 per class of several runs side by side (as each run's rule judged it)."""
    figure = go.Figure()
    for report, label in zip(reports, labels):
        figure.add_trace(
            go.Bar(
                x=[str(r.class_id) for r in report.rows], y=[r.judged_l1 for r in report.rows], name=figure_text(label)
            )
        )
    figure.update_layout(
        barmode="group",
        height=height,
        xaxis_title="class",
        yaxis_title="mask L1 (pixels)",
        xaxis_type="category",
        legend={"orientation": "h", "y": 1.12},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return figure


def balance_figure(counts: dict[int, int], names: list[str], height: int = 300) -> go.Figure:
    """Samples per class."""
    figure = go.Figure(
        go.Bar(
            x=[str(k) for k in counts],
            y=list(counts.values()),
            customdata=[figure_text(names[k]) if k < len(names) else str(k) for k in counts],
            hovertemplate="class %{x} · %{customdata}<br>%{y} samples<extra></extra>",
        )
    )
    figure.update_layout(
        height=height,
        xaxis_title="class",
        yaxis_title="samples",
        xaxis_type="category",
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return figure


def repair_figure(rows: list[dict], height: int = 320) -> go.Figure:
    """Before/after bars of a repair's figures (:meth:`nc_core.repair.RepairResult.table`)."""
    labels = [figure_text(row["figure"]) for row in rows]
    figure = go.Figure(
        [
            go.Bar(
                name=when,
                y=labels,
                x=[row[when] if row[when] is not None else 0 for row in rows],
                orientation="h",
                text=[f"{row[when]:.1%}" if row[when] is not None else "–" for row in rows],
                textposition="auto",
            )
            for when in ("before", "after")
        ]
    )
    figure.update_layout(
        barmode="group",
        height=height,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(range=[0, 1], tickformat=".0%"),
        yaxis=dict(autorange="reversed"),
        legend=dict(orientation="h", y=1.12),
    )
    return figure


def roc_figure(fpr: list[float], tpr: list[float], auc: float, height: int = 340) -> go.Figure:
    """An audit's ROC curve (:func:`nc_core.audit.metrics.roc_points`) with its area."""
    figure = go.Figure(
        [
            go.Scatter(x=fpr, y=tpr, mode="lines+markers", name=f"ROC (AUC {auc:.3f})"),
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="chance"),
        ]
    )
    figure.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis_title="clean models flagged",
        yaxis_title="backdoored models flagged",
        xaxis=dict(range=[0, 1]),
        yaxis=dict(range=[0, 1.02]),
    )
    return figure
