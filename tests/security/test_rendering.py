"""Untrusted text reaches pages only as text: no Markdown, no HTML, no link, no fetched image.

Names come from uploads and from imported bundles: a class or model named
``[x](http://evil)`` or ``![a](http://evil/a.png)`` must show those characters. Rather than
checking each element kind, every string of every element a page renders is inspected
(labels, captions, image captions, page links, Plotly figures), so a new element that forgets
:func:`dashboard.text.plain` fails here.
"""

from __future__ import annotations

import json
import re

import pytest
from google.protobuf.message import Message
from streamlit.testing.v1 import AppTest
from test_app_pages import RUNS_PAGE, SCAN_PAGE, app, store
from test_store import _result

HOSTILE = (
    "**Scan OK** [x](https://evil.example/login) ![a](http://evil.example/a.png) "
    "http://bare.example <b>bold</b> <a href='https://evil.example'>a</a>"
)
#: The hostile string as Markdown or HTML would take it: a link, an image, bold, an autolink, a tag.
UNESCAPED = re.compile(r"(?<!\\)\]\(https?|(?<!\\)\*\*Scan|(?<![\\/])https?://bare|(?<!\\)<b>bold|(?<!\\)<a href")
#: In a Plotly figure only HTML counts: Plotly draws ``<b>`` and ``<a href>``, not Markdown.
UNESCAPED_HTML = re.compile(r"<b>bold|<a href")
#: Element fields Streamlit shows as plain text (never Markdown): option lists, values typed by a user.
PLAIN_FIELDS = (".options", ".raw_value", ".default", ".value", ".placeholder", ".spec_plain")


def _strings(message: Message, path: str = ""):
    for field, value in message.ListFields():
        values = value if not isinstance(value, (str, bytes, Message)) and hasattr(value, "__iter__") else [value]
        for item in values:
            if isinstance(item, Message):
                yield from _strings(item, f"{path}.{field.name}")
            elif isinstance(item, str):
                yield f"{path}.{field.name}", item


def _rendered(node):
    """(kind.field, text) of every string every element under ``node`` carries."""
    proto = getattr(node, "proto", None)
    if isinstance(proto, Message):
        kind = type(node).__name__
        for path, text in _strings(proto):
            if path.endswith(".spec"):  # a Plotly figure: its text is drawn with Plotly's HTML subset
                yield f"{kind}{path}", _plotly_text(text)
            elif not path.endswith(PLAIN_FIELDS) or kind in ("Markdown", "Caption"):
                yield f"{kind}{path}", text
    children = getattr(node, "children", None)
    for child in children.values() if isinstance(children, dict) else []:
        yield from _rendered(child)


def _plotly_text(spec: str) -> str:
    """Every string in a figure's JSON (names, ticks, hover data, annotations), joined."""

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)

    return "\n".join(strings(json.loads(spec)))


def _hostile_runs(folder) -> list[str]:
    from nc_core.detection.report import make_report

    runs = store(folder)
    names = [HOSTILE, "b", "c"]
    results = [_result(k, l1) for k, l1 in enumerate([4.0, 60.0, 61.0])]
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


def _assert_shown_as_text(at: AppTest) -> None:
    assert not at.exception, at.exception
    shown = list(_rendered(at._tree))
    assert any("evil" in text for _, text in shown), "the hostile names are on the page"
    leaks = [
        (where, text[:120])
        for where, text in shown
        if (UNESCAPED_HTML if where.endswith(".spec") else UNESCAPED).search(text)
    ]
    assert not leaks, leaks


@pytest.mark.integration
def test_names_show_as_text_on_home_runs_and_scan_pages(data_dir):
    first, _ = _hostile_runs(data_dir)
    _assert_shown_as_text(app().run())  # recent runs, as page links
    for page in (RUNS_PAGE, SCAN_PAGE):  # the Runs page renders its Open and Compare tabs both
        at = app()
        at.query_params["run"] = first
        _assert_shown_as_text(at.run().switch_page(page).run())


@pytest.mark.integration
def test_class_names_show_as_text_on_the_model_page(data_dir):
    from test_app_pages import MODEL_PAGE, SAMPLES, upload

    at = app().run().switch_page(MODEL_PAGE).run()
    at.radio(key="model_source").set_value("Upload your own").run()
    at.text_area(key="upload_names").set_value("\n".join([HOSTILE] * 10))
    at = upload(
        at,
        ("m.keras", (SAMPLES / "mnist_backdoored.keras").read_bytes()),
        ("d.npz", (SAMPLES / "mnist_data.npz").read_bytes()),
    )
    assert "selection" in at.session_state
    _assert_shown_as_text(at)
