"""Untrusted text on a page, checked as shown: every string of every element a page renders.

Rather than checking each element kind, every string of every element is inspected (labels,
captions, image captions, page links, Plotly figures), so a new element that forgets
:func:`dashboard.text.plain` fails :func:`assert_shown_as_text`.
"""

from __future__ import annotations

import json
import re

from google.protobuf.message import Message
from streamlit.testing.v1 import AppTest

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


def assert_shown_as_text(at: AppTest) -> None:
    assert not at.exception, at.exception
    shown = list(_rendered(at._tree))
    assert any("evil" in text for _, text in shown), "the hostile names are on the page"
    leaks = [
        (where, text[:120])
        for where, text in shown
        if (UNESCAPED_HTML if where.endswith(".spec") else UNESCAPED).search(text)
    ]
    assert not leaks, leaks
