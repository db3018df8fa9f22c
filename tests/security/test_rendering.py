"""Untrusted text reaches pages only as text: no Markdown, no HTML, no link, no fetched image.

Names come from uploads and from imported bundles: a class or model named
``[x](http://evil)`` or ``![a](http://evil/a.png)`` must show those characters. Rather than
checking each element kind, every string of every element a page renders is inspected
(labels, captions, image captions, page links, Plotly figures), so a new element that forgets
:func:`dashboard.text.plain` fails here.
"""

from __future__ import annotations

import pytest

from tests.helpers.app import MODEL_PAGE, RUNS_PAGE, SCAN_PAGE, app, store, upload
from tests.helpers.paths import SAMPLES
from tests.helpers.rendering import HOSTILE, assert_shown_as_text
from tests.helpers.results import random_result


def _hostile_runs(folder) -> list[str]:
    from nc_core.detection.report import make_report

    runs = store(folder)
    names = [HOSTILE, "b", "c"]
    results = [random_result(k, l1) for k, l1 in enumerate([4.0, 60.0, 61.0])]
    ids = []
    for model in (HOSTILE + ".keras", "second.keras"):  # two scans: the Runs page compares them
        run_id = runs.create_run(
            "scan",
            model,
            HOSTILE + ".npz",
            {"config": {"epochs": 3, "method": HOSTILE}, "class_names": names, "pixel_range": HOSTILE},
        )
        for result in results:
            runs.save_class_result(run_id, result)
        runs.save_report(run_id, make_report(results, model, HOSTILE, class_names=names))
        runs.set_status(run_id, "done")
        ids.append(run_id)
    return ids


@pytest.mark.integration
def test_names_show_as_text_on_home_runs_and_scan_pages(data_dir):
    first, _ = _hostile_runs(data_dir)
    assert_shown_as_text(app().run())  # recent runs, as page links
    for page in (RUNS_PAGE, SCAN_PAGE):  # the Runs page renders its Open and Compare tabs both
        at = app()
        at.query_params["run"] = first
        assert_shown_as_text(at.run().switch_page(page).run())


@pytest.mark.integration
def test_class_names_show_as_text_on_the_model_page(data_dir):
    at = app().run().switch_page(MODEL_PAGE).run()
    at.radio(key="model_source").set_value("Upload your own").run()
    at.text_area(key="upload_names").set_value("\n".join([HOSTILE] * 10))
    at = upload(
        at,
        ("m.keras", (SAMPLES / "mnist_backdoored.keras").read_bytes()),
        ("d.npz", (SAMPLES / "mnist_data.npz").read_bytes()),
    )
    assert "selection" in at.session_state
    assert_shown_as_text(at)
