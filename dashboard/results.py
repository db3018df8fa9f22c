"""One result view for every run: the reverse page, the scan page and the runs page all call it.

A run's result is a :class:`~nc_core.detection.report.ScanReport` (one row for a single-class run). Every
figure shown (L1, anomaly index, ASR, verdict) is read from the report; only the previews of
triggered samples are computed here, with the library's ``stamp`` and ``predict``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from dashboard.runs import origin_text
from dashboard.text import class_label, plain
from nc_core.detection.detect import SIZE_CREDIT_CAP
from nc_core.detection.samples import SAMPLES_KEPT
from nc_core.reports.columns import CLASS_COLUMNS, class_table
from nc_core.reports.figures import curves_figure, l1_figure
from nc_core.reports.html_report import render_html_report
from nc_core.reports.images import mask_box, to_image, trigger_images, zoomed_mask

if TYPE_CHECKING:
    from nc_core.detection.samples import TriggeredSamples
    from nc_core.optimise.results import TriggerResult

PREVIEW_SIDE = 224  # pixels of an enlarged mask / pattern / fusion
GRID_WIDTH = 150  # pixels of one class in the trigger grid
SAMPLE_WIDTH = 96
#: A run's triggered samples of one class: stored with the run, or made from its model and data;
#: None when there is nothing to make them from.
SamplesSource = Callable[["TriggerResult"], "TriggeredSamples | None"]


def report_names(report, record) -> list[str]:
    """Class names for a run: those the user saw when starting it, else the report's."""
    given = list(record.scan_spec.class_names)
    by_id = {row.class_id: row.name for row in report.rows} if report is not None else {}
    count = max([len(given), *[k + 1 for k in by_id]], default=0)
    return [given[k] if k < len(given) else by_id.get(k, str(k)) for k in range(count)]


def _scale(side: int, target: int) -> int:
    return max(1, target // max(side, 1))


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def verdict_banner(report, names: list[str]) -> None:
    """Red when a class is flagged, amber when the scan cannot vouch for a verdict, green when clean.

    The heading is the library's one-sentence headline (``report.headline``) and the text under it
    the library's own reason (``report.verdict_reason``), so the banner, the CLI and the report
    never explain the same verdict differently. The rule's thresholds wait behind an expander.
    """
    reason = plain(report.verdict_reason[:1].upper() + report.verdict_reason[1:])
    headline = plain(report.headline)
    if report.verdict == "backdoored":
        st.error(f"### {headline}\n{reason}", icon=":material/gpp_bad:")
    elif report.verdict == "inconclusive":
        st.warning(f"### {headline}\n{reason}", icon=":material/help:")
    else:
        st.success(f"### {headline}\n{reason}", icon=":material/verified_user:")
    with st.expander("How the verdict is decided"):
        st.markdown(rule_text(report))
    if report.standing_out:
        easy = ", ".join(plain(class_label(k, names)) for k in report.standing_out if k not in report.suspects)
        if easy:
            st.info(
                f"Class {easy} stands out from the others but is not flagged: its mask is not far smaller than "
                f"the median ({report.max_ratio:g}) or it is scattered like a natural feature (a naturally easy "
                "target, such as a similar class). Compare it below.",
                icon=":material/info:",
            )
    if report.cancelled:
        st.warning(f"Partial result: only {len(report.rows)} classes finished; the verdict may change with the rest.")


def rule_text(report) -> str:
    """The two methods, what each sees, and the fused rule's thresholds (Markdown of our own)."""
    from nc_core.detection.fusion import MAX_MARGIN, NEURAL_CLEANSE, WHAT_IT_SEES

    margin = (
        f"- **Max-margin** (MM-BD) sees {WHAT_IT_SEES[MAX_MARGIN]} A class is flagged when its largest "
        f"reachable logit margin is an outlier among the classes' (gamma null, p-value below "
        f"{report.margin_p:g}).\n"
        if report.margin is not None
        else "- **Max-margin**: not run for this scan (`margin_steps` 0).\n"
    )
    return (
        f"- **Neural Cleanse** sees {WHAT_IT_SEES[NEURAL_CLEANSE]} A class is flagged when it stands out above "
        f"{report.threshold:g} on log mask sizes (down to {report.threshold / SIZE_CREDIT_CAP**0.5:.2f} for masks far "
        f"below the median), is at most {report.max_ratio:g} of the median, and has a compact mask (two windows, "
        f"edge at most {report.max_boundary:g} squares') or one below {report.extreme_ratio:g} of the median.\n"
        + margin
        + "- **Fused verdict**: a class either method flags is a backdoor target. A class far smaller and standing out "
        "whose mask looks natural is a *suspect*: never clean, inconclusive unless the max-margin test confirms it.\n"
        f"- Model score **{report.score:.2f}** (above 1: flagged); Neural Cleanse alone {report.nc_score:.2f}; "
        f"paper's anomaly index {report.anomaly_index:.2f}."
    )


def show_samples(samples, names: list[str], count: int = SAMPLES_KEPT) -> None:
    """Clean samples of other classes beside the same samples with the trigger, with the model's
    predictions, as the library made and stored them (:mod:`nc_core.detection.samples`)."""
    if not len(samples):
        st.caption("The data holds no samples of other classes to stamp the trigger on.")
        return
    samples = samples.first(count)
    scale = _scale(max(samples.clean.shape[1:3]), SAMPLE_WIDTH)
    st.caption("Clean samples of other classes: true class → the model's prediction (confidence)")
    st.image(
        [to_image(x / 255.0, scale) for x in samples.clean],
        caption=[plain(samples.caption(i, names=names)) for i in range(len(samples))],
        width=SAMPLE_WIDTH,
    )
    st.caption("The same samples with the recovered trigger")
    st.image(
        [to_image(x / 255.0, scale) for x in samples.triggered],
        caption=[plain(samples.caption(i, triggered=True, names=names)) for i in range(len(samples))],
        width=SAMPLE_WIDTH,
    )


def _samples_or_note(samples_for: SamplesSource, result, names: list[str], count: int = SAMPLES_KEPT) -> None:
    available = samples_for(result)
    if available is None:
        st.caption(
            "This run's triggered samples were not stored with it, and its model and data are not "
            "here (an older imported bundle, say), so they cannot be shown."
        )
        return
    show_samples(available, names, count)


def trigger_pictures(result, key: str) -> None:
    """Mask, pattern and mask × pattern, enlarged, each with a PNG download."""
    images = trigger_images(result.mask, result.pattern, scale=_scale(result.pattern.shape[0], PREVIEW_SIDE))
    titles = {"mask": "Mask", "pattern": "Pattern", "fusion": "Mask × pattern"}
    zoom = zoomed_mask(result.mask)
    if zoom is not None:  # a tiny mask is a black square at its true size: show where it is, and up close
        images["mask"] = _outlined(images["mask"], mask_box(result.mask), _scale(result.pattern.shape[0], PREVIEW_SIDE))
        images["zoom"] = zoom
        titles["zoom"] = "Mask, zoomed"
    for column, (name, image) in zip(st.columns(len(images)), images.items()):
        column.image(image, caption=titles[name], width="stretch")
        column.download_button(
            f"{titles[name]} PNG",
            _png(image),
            file_name=f"class{result.target}_{name}.png",
            mime="image/png",
            key=f"{key}_png_{name}",
            on_click="ignore",
        )


def _outlined(image, box, scale: int):
    """``image`` with a red frame around ``box`` (mask pixels, scaled ``scale`` times)."""
    from PIL import ImageDraw

    framed = image.convert("RGB")
    top, left, bottom, right = box
    ImageDraw.Draw(framed).rectangle(
        (left * scale, top * scale, right * scale - 1, bottom * scale - 1), outline=(214, 39, 40), width=2
    )
    return framed


def trigger_metrics(result) -> None:
    """L1 and ASR as the library computed them, with how the optimisation ended."""
    columns = st.columns(4)
    columns[0].metric("Mask L1 (pixels)", f"{result.l1:.1f}")
    columns[1].metric(
        "Attack success rate",
        "–" if np.isnan(result.asr) else f"{result.asr:.1%}",
        help="Share of clean samples of other classes that the trigger sends to the target.",
    )
    columns[2].metric("Epochs", result.epochs)
    columns[3].metric("Seconds", f"{result.seconds:.1f}")
    if len(result.runs_l1) > 1:
        st.caption(
            f"Confirmed from {len(result.runs_l1)} independent starts, L1 "
            f"{', '.join(f'{l1:.1f}' for l1 in result.runs_l1)}; the median run is shown."
        )
    if not result.reached_threshold:
        st.warning(
            "No epoch reached the attack success threshold: this is the last mask, not a minimal one. Try more epochs."
        )


def trigger_detail(result, names: list[str], samples_for: SamplesSource, key: str) -> None:
    """Everything about one class's trigger: pictures, figures, triggered samples, curves."""
    st.subheader(f"Trigger for class {plain(class_label(result.target, names))}")
    trigger_metrics(result)
    trigger_pictures(result, key)
    _samples_or_note(samples_for, result, names)
    if result.history:
        st.plotly_chart(curves_figure([vars(h) for h in result.history]), key=f"{key}_curves")


def results_table(report, names: list[str]) -> None:
    """The per-class figures as a sortable table: the columns of the CLI and the HTML report."""
    numbers = {
        column.label: st.column_config.NumberColumn(column.label, format=column.printf, help=column.help or None)
        for column in CLASS_COLUMNS
        if column.spec
    }
    texts = {
        column.label: st.column_config.TextColumn(column.label, help=column.help or None)
        for column in CLASS_COLUMNS
        if not column.spec
    }
    st.dataframe(class_table(report, names), column_config={**numbers, **texts}, hide_index=True, width="stretch")


def trigger_grid(report, names: list[str]) -> None:
    """Every class's mask | pattern | mask × pattern, small, flagged classes marked."""
    strips, captions = [], []
    for result in report.results:
        images = trigger_images(result.mask, result.pattern, scale=_scale(result.pattern.shape[0], 48))
        strip = np.concatenate([np.asarray(images[k].convert("RGB")) for k in ("mask", "pattern", "fusion")], axis=1)
        strips.append(strip)
        mark = "FLAGGED " if result.target in report.flagged else ""
        captions.append(f"{mark}{class_label(result.target, names)} · L1 {result.l1:.0f}")
    st.caption("Each class: mask | pattern | mask × pattern")
    st.image(strips, caption=captions, width=GRID_WIDTH)


def class_comparison(report, names: list[str], samples_for: SamplesSource, key: str) -> None:
    """2 to 4 classes side by side, with their triggered samples."""
    by_l1 = [row.class_id for row in sorted(report.rows, key=lambda row: row.l1)]
    default = list(dict.fromkeys([*report.flagged, *by_l1]))[:2]
    chosen = st.multiselect(
        "Classes to compare (2 to 4)",
        [row.class_id for row in report.rows],
        default=default,
        max_selections=4,
        format_func=lambda k: class_label(k, names),
        key=f"{key}_compare",
    )
    if len(chosen) < 2:
        st.caption("Pick at least two classes.")
        return
    for column, class_id in zip(st.columns(len(chosen)), chosen):
        result = report.result_for(class_id)
        row = next(r for r in report.rows if r.class_id == class_id)
        with column:
            st.markdown(f"**{plain(class_label(class_id, names))}**" + (" :red[**flagged**]" if row.flagged else ""))
            runs = f" · median of {len(result.runs_l1)} starts" if len(result.runs_l1) > 1 else ""
            st.caption(
                f"L1 {row.l1:.1f} · score {row.score:.2f} · compactness {row.compactness:.2f} · "
                f"boundary {row.boundary:.2f} · "
                f"anomaly index {row.anomaly_index:.2f} · ASR {row.asr:.1%}{runs} · "
                f"max margin {row.margin:.1f} ({row.margin_ratio:.2f} of the median, p {row.margin_p:.2g})"
            )
            images = trigger_images(result.mask, result.pattern, scale=_scale(result.pattern.shape[0], 128))
            st.image(list(images.values()), caption=["mask", "pattern", "mask × pattern"], width=96)
            _samples_or_note(samples_for, result, names, count=3)


def scan_results(report, names: list[str], samples_for: SamplesSource, key: str) -> None:
    """A scan's verdict, L1 chart with median and threshold, table, trigger grid and comparison."""
    verdict_banner(report, names)
    columns = st.columns(4)
    columns[0].metric("Score", f"{report.score:.2f}", help="Above 1 means a class is flagged.")
    columns[1].metric("Median L1", f"{report.median:.1f}")
    columns[2].metric("Anomaly index (paper)", f"{report.anomaly_index:.2f}")
    columns[3].metric("Detection threshold L1", f"{report.detection_l1:.1f}")
    st.plotly_chart(l1_figure(report, names), key=f"{key}_l1")
    margin_evidence(report, names, key)
    results_table(report, names)
    st.subheader("Triggers of every class")
    trigger_grid(report, names)
    st.subheader("Compare classes")
    class_comparison(report, names, samples_for, key)


def margin_evidence(report, names: list[str], key: str) -> None:
    """The second method's evidence: each class's largest margin, and what input reaches it."""
    from nc_core.detection.fusion import MAX_MARGIN, WHAT_IT_SEES
    from nc_core.reports.figures import margin_figure

    if report.margin is None:
        return
    st.subheader("Second method: max-margin")
    st.caption(f"Max-margin sees {WHAT_IT_SEES[MAX_MARGIN]}")
    st.plotly_chart(margin_figure(report, names), key=f"{key}_margin")
    images = report.margin.images
    shown = [row for row in sorted(report.rows, key=lambda r: -r.margin) if row.class_id < len(images)][:8]
    if shown and len(images):
        scale = _scale(np.shape(images[0])[0], 96)
        st.caption("The inputs that drive each class hardest (largest margins first)")
        st.image(
            [to_image(np.asarray(images[row.class_id]), scale) for row in shown],
            caption=[f"{class_label(row.class_id, names)} · margin {row.margin:.0f}" for row in shown],
            width=96,
        )


def run_summary(record) -> None:
    """One line on what was run, with which settings."""
    spec = record.scan_spec
    config = spec.config
    which = "all classes" if not spec.classes else ", ".join(map(str, spec.classes))
    if record.kind == "repair":
        which = f"the model of scan {record.spec.source_run or '?'}, re-scanned with its settings"
    summary = (
        f"Run {record.id} · {record.kind} of {which} · {record.model} on {record.data} · "
        f"pixel range {spec.pixel_range or 'guessed'} · {config.method} / "
        f"{config.engine} · {config.epochs} epochs, batch {config.batch_size}, "
        f"learning rate {config.learning_rate} · {record.status}"
        + (f" · {origin_text(record)}" if getattr(record, "imported", None) else "")
    )
    st.caption(plain(summary))  # every field may come from an imported bundle


def show_run(record, report, samples_for: SamplesSource, key: str) -> None:
    """The result view of a finished, cancelled, failed or interrupted run.

    ``samples_for`` gives each class's triggered samples (:func:`dashboard.loading.run_samples`):
    stored with the run, else made from its model and data, after the stored figures are on
    the page, so they show while a model loads.
    """
    run_summary(record)
    st.sidebar.caption(f"On screen: run {plain(record.id)} · {plain(record.model)}")
    if record.status == "failed":
        st.error(f"The run failed: {plain(record.error)}")
    elif record.status == "interrupted":
        st.warning(
            f"The run was interrupted: {plain(record.error or 'its worker stopped')}. Finished classes are kept."
        )
    elif record.status == "cancelled":
        st.warning("The run was cancelled; finished classes are kept.")
    if record.kind == "repair":
        from dashboard.repair import repair_results

        repair_results(record)
    if report is None or not report.results:
        if record.status != "failed":
            st.info(
                "No class of the re-scan finished in this run."
                if record.kind == "repair"
                else "No class finished in this run."
            )
        return
    names = report_names(report, record)
    if report.ran_on:
        st.caption(plain(f"{report.steps:,} optimisation steps in {report.seconds:.1f} s on {report.ran_on}"))
    st.download_button(
        "Download HTML report",
        partial(html_report, report, names, samples_for),
        file_name=f"nc_report_{record.id}.html",
        mime="text/html",
        icon=":material/description:",
        key=f"{key}_html_report",
        on_click="ignore",
        help="One file with the verdict, chart, table and every trigger; opens offline in a browser.",
    )
    if record.kind == "reverse":
        trigger_detail(report.results[0], names, samples_for, key)
        return
    if record.kind == "repair":
        st.subheader("The re-scan of the repaired model")
    scan_results(report, names, samples_for, key)
    if record.kind == "scan" and record.status == "done":
        from dashboard.page import reviewer_mode
        from dashboard.repair import repair_action

        if not reviewer_mode():
            repair_action(record, report)


def html_report(report, names: list[str], samples_for: SamplesSource) -> str:
    """The run as one self-contained HTML file, with each class's triggered samples where the run has them."""
    triggered = {}
    for result in report.results:
        try:
            samples = samples_for(result)
        except Exception:  # the report stands without samples
            samples = None
        if samples is not None:
            triggered[result.target] = samples
    return render_html_report(report, class_names=names, triggered=triggered)
