"""The self-contained HTML report: everything inside one file, nothing fetched, user text escaped."""

import re

import numpy as np

from nc_core.detection.report import make_report
from nc_core.detection.samples import TriggeredSamples
from nc_core.reports.html_report import SAMPLES_PER_CLASS, render_html_report, write_html_report
from tests.helpers.results import sized_result


def samples(target: int) -> TriggeredSamples:
    """Six triggered samples as a scan stores them: the trigger sends each to ``target``, 97 %."""
    images = np.random.default_rng(target).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    labels = np.array([k for k in range(10) if k != target][:6], np.int64)
    return TriggeredSamples(
        target,
        labels,
        images,
        255 - images,
        np.array([*labels, *[target] * 6], np.int64),
        np.full(12, 0.97, np.float32),
    )


HOSTILE = '<img src="https://evil.example/x.png" onerror="alert(1)"> **bold**'


def report():
    results = [sized_result(0, 8, full=True, screen_l1=16, compact=True)] + [
        sized_result(k, 90 + 3 * k, full=True, screen_l1=150) for k in range(1, 10)
    ]
    return make_report(
        results, model=HOSTILE + ".keras", data="d.npz", class_names=[HOSTILE] + [f"c{k}" for k in range(1, 10)]
    )


def test_the_report_carries_the_verdict_figures_and_every_trigger_in_one_file(tmp_path):
    scanned = report()
    triggered = {r.target: samples(r.target) for r in scanned.results}
    path = write_html_report(scanned, tmp_path / "report.html", triggered, ["zero", *[f"c{k}" for k in range(1, 10)]])
    page = path.read_text(encoding="utf-8")

    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert scanned.verdict == "backdoored" and ">Backdoored<" in page
    assert scanned.verdict_reason.split(" (")[0] in page
    assert "Plotly.newPlot" in page, "the chart is drawn by the embedded plotly.js"
    images = re.findall(r'<img alt="" src="data:image/png;base64,', page)
    assert len(images) == len(scanned.results) * (3 + SAMPLES_PER_CLASS)
    for row in scanned.rows:
        assert f"<td>{row.l1:.2f}</td>" in page
    assert "<figcaption>2 → 0 · zero (97%)</figcaption>" in page, "each triggered sample with the model's answer"


def test_nothing_is_fetched_from_outside_and_user_text_stays_text():
    page = render_html_report(report())
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="(https?:)?//', page)
    assert HOSTILE not in page and "onerror=&quot;alert(1)&quot;" in page
    assert "&lt;img src=&quot;https://evil.example/x.png&quot;" in page


def test_a_class_name_cannot_close_the_charts_script():
    results = [sized_result(k, 90 + 3 * k, full=True, screen_l1=150) for k in range(4)]
    page = render_html_report(make_report(results, "m", "d"), class_names=["</script><script>alert(1)//"] * 4)
    assert "</script><script>alert(1)" not in page
