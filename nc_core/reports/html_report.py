"""One self-contained HTML file of a run, for reviewers: opens offline in any browser.

Verdict and reason, settings, the L1 chart (Plotly, its JavaScript embedded), the per-class
table, every class's mask, pattern and fusion, and clean samples with the trigger stamped on and
the model's predictions (:mod:`nc_core.detection.samples`), all inside one file: images as base64
PNGs, no link to anything outside. Every string that
comes from a user (model and data names, class names) is HTML-escaped.

    >>> samples = {7: store.stored_samples(scan_run_id, 7)}  # the class's triggered samples, by class
    >>> path = write_html_report(report, out / "report.html", triggered=samples)
    >>> path.name, "Backdoored: class 7 flagged" in path.read_text()
    ('report.html', True)
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nc_core.detection.fusion import MAX_MARGIN, NEURAL_CLEANSE, WHAT_IT_SEES
from nc_core.detection.report import ScanReport
from nc_core.detection.samples import TriggeredSamples
from nc_core.reports.columns import CLASS_COLUMNS, class_rows
from nc_core.reports.figures import l1_figure, margin_figure
from nc_core.reports.images import scale_for, to_image, trigger_images

#: Triggered samples shown per class.
SAMPLES_PER_CLASS = 4
#: Side in pixels of the pictures in the class gallery.
PICTURE_SIDE = 128
VERDICT_COLOURS = {"backdoored": "#d62728", "inconclusive": "#ff7f0e", "clean": "#2ca02c"}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
.verdict { padding: 1rem 1.25rem; border-radius: 6px; color: white; }
.verdict h1 { margin: 0 0 .25rem 0; font-size: 1.6rem; }
table { border-collapse: collapse; font-size: .85rem; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #ddd; text-align: right; }
th:nth-child(2), td:nth-child(2) { text-align: left; }
tr.flagged td { color: #d62728; font-weight: 600; }
.classes { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 1rem; }
.class { border: 1px solid #ddd; border-radius: 6px; padding: .5rem; }
.class img { image-rendering: pixelated; width: 88px; margin-right: 4px; }
.class figure { display: inline-block; margin: 0 4px 4px 0; }
.class figcaption { font-size: .7rem; color: #555; }
.settings { font-size: .85rem; color: #555; }
"""


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _png(array: np.ndarray) -> str:
    """A unit-range image as an inline ``<img>``, enlarged for the gallery."""
    return _image_tag(to_image(array, scale_for(max(np.shape(array)[:2]), PICTURE_SIDE)))


def _image_tag(image) -> str:
    """A PIL image as an inline ``<img>`` (base64 PNG: the file needs nothing outside)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _name(report: ScanReport, class_id: int, names: list[str] | None) -> str:
    if names and class_id < len(names):
        return names[class_id]
    return next((row.name for row in report.rows if row.class_id == class_id), str(class_id))


def render_html_report(
    report: ScanReport,
    triggered: Mapping[int, TriggeredSamples] | None = None,
    class_names: list[str] | None = None,
    title: str | None = None,
) -> str:
    """The whole report as one HTML document (see the module docstring).

    ``triggered`` holds each class's triggered samples, as a scan stored them (its ``on_samples``);
    the gallery shows the first :data:`SAMPLES_PER_CLASS` of a class with the model's predictions,
    and the triggers alone for a class without.
    """
    last = max((r.class_id for r in report.rows), default=-1)
    names = [_name(report, k, class_names) for k in range(last + 1)]
    figure = l1_figure(report, names)
    chart = figure.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    margin_chart = (
        "<h2>Second method: max-margin</h2>"
        f"<p class='settings'>Max-margin sees {_text(WHAT_IT_SEES[MAX_MARGIN])}</p>"
        + margin_figure(report, names).to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
        if report.margin is not None
        else ""
    )
    colour = VERDICT_COLOURS.get(report.verdict, "#555")
    heading = _text(title or f"Neural Cleanse report: {report.model}")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{heading}</title><style>{_STYLE}</style></head><body>",
        f"<p class='settings'>{heading} · data {_text(report.data)} · pixel range {_text(report.pixel_range)} · "
        f"made {_text(time.strftime('%Y-%m-%d %H:%M', time.localtime(report.created)))}</p>",
        f"<div class='verdict' style='background:{colour}'><h1>{_text(report.verdict.capitalize())}</h1>"
        f"<p><b>{_text(report.headline)}</b></p><div>{_text(report.verdict_reason)}</div></div>",
        _settings(report),
        "<h2>Neural Cleanse: mask size per class</h2>",
        f"<p class='settings'>Neural Cleanse sees {_text(WHAT_IT_SEES[NEURAL_CLEANSE])}</p>",
        chart,
        margin_chart,
        "<h2>Classes</h2>",
        _table(report, class_names),
        "<h2>Recovered triggers</h2>",
        _gallery(report, triggered or {}, class_names),
        "</body></html>",
    ]
    return "\n".join(parts)


def _settings(report: ScanReport) -> str:
    config = report.config
    items = {
        "score": f"{report.score:.2f} (a class is flagged above 1)",
        "flagged": report.flagged or "none",
        "median L1": f"{report.median:.1f}",
        "anomaly index (paper)": f"{report.anomaly_index:.2f}",
        "flagged by": "; ".join(f"{c}: {' and '.join(m)}" for c, m in report.flagged_by.items()) or "none",
        "suspects (never clean)": report.suspects or "none",
        "rule": (
            f"threshold {report.threshold:g}, max L1 ratio {report.max_ratio:g}, "
            f"min compactness {report.min_compactness:g}, max boundary {report.max_boundary:g}, "
            f"extreme ratio {report.extreme_ratio:g}, max-margin p-value {report.margin_p:g}"
        ),
        "schedule": (
            f"{config.get('method')} / {config.get('engine')}, at most {config.get('epochs')} epochs, "
            f"batch {config.get('batch_size')}, screen {config.get('screen_epochs', 0)} epochs, "
            f"{len(report.screened)} of {len(report.rows)} classes screened only"
            + (
                f", {len(report.probed)} probed only ({config.get('probe_epochs')} epochs; median measured "
                f"on a random sample of {sum(r.median_sample for r in report.rows)})"
                if report.probed
                else ""
            )
        ),
        "work": f"{report.steps} optimisation steps in {report.seconds:.1f} s"
        + (f" on {report.ran_on}" if report.ran_on else "")
        + (" (cancelled)" if report.cancelled else ""),
    }
    rows = "".join(f"<li><b>{_text(k)}</b>: {_text(v)}</li>" for k, v in items.items())
    return f"<ul class='settings'>{rows}</ul>"


def _table(report: ScanReport, class_names: list[str] | None) -> str:
    head = "".join(f"<th title='{_text(c.help)}'>{_text(c.label)}</th>" for c in CLASS_COLUMNS)
    body = []
    for row in class_rows(report):
        cells = [
            _name(report, row.class_id, class_names) if column.label == "name" else column.text(row, report)
            for column in CLASS_COLUMNS
        ]
        body.append(
            f"<tr class='{'flagged' if row.flagged else ''}'>"
            + "".join(f"<td>{_text(c)}</td>" for c in cells)
            + "</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _gallery(report: ScanReport, triggered: Mapping[int, TriggeredSamples], class_names: list[str] | None) -> str:
    cards = []
    flagged_first = sorted(report.results, key=lambda r: (r.target not in report.flagged, r.l1))
    for result in flagged_first:
        pictures = trigger_images(
            result.mask, result.pattern, scale_for(max(np.shape(result.pattern)[:2]), PICTURE_SIDE)
        )
        samples = _samples(triggered.get(result.target), class_names)
        mark = " · flagged" if result.target in report.flagged else ""
        cards.append(
            f"<div class='class'><b>{result.target} · {_text(_name(report, result.target, class_names))}</b>"
            f"{mark}<br>L1 {result.l1:.1f} · ASR {result.asr:.1%}<div>"
            + "".join(_image_tag(pictures[k]) for k in ("mask", "pattern", "fusion"))
            + f"</div>{samples}</div>"
        )
    return f"<div class='classes'>{''.join(cards)}</div>"


def _samples(samples: TriggeredSamples | None, class_names: list[str] | None) -> str:
    """The triggered samples of one class, each captioned true class → prediction (confidence)."""
    if samples is None or not len(samples):
        return ""
    samples = samples.first(SAMPLES_PER_CLASS)
    figures = [
        f"<figure>{_png(image / 255.0)}<figcaption>{_text(samples.caption(i, True, class_names))}</figcaption></figure>"
        for i, image in enumerate(samples.triggered)
    ]
    return "<div>With the trigger: true → predicted</div><div>" + "".join(figures) + "</div>"


def write_html_report(
    report: ScanReport,
    path: str | Path,
    triggered: Mapping[int, TriggeredSamples] | None = None,
    class_names: list[str] | None = None,
) -> Path:
    """Write :func:`render_html_report` to ``path`` (UTF-8); return the path."""
    path = Path(path)
    path.write_text(render_html_report(report, triggered, class_names), encoding="utf-8")
    return path
