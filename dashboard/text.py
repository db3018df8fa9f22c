"""Text on pages: user-controlled text shown as text (never as Markdown, HTML or a link), and the
few formats every page shares (class labels, durations).

File names, model and data names, class names, error messages and every field of an imported
bundle reach pages whose captions, headers, alerts and banners Streamlit renders as Markdown. A
class named ``[Re-enter your password](https://evil)`` must show those characters, not a link.
Every such value goes through :func:`plain` before it joins a Markdown string.

    >>> plain("**Scan OK**")
    '\\\\*\\\\*Scan OK\\\\*\\\\*'
"""

from __future__ import annotations

import re

#: Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping them all
#: also breaks autolinks (``https\\://``), HTML tags, emphasis, headings, tables, LaTeX (``$``)
#: and Streamlit's own ``:colour[...]`` and ``:material/...:`` directives.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def plain(value: object) -> str:
    """``value`` as literal text inside Markdown: punctuation escaped, line breaks flattened."""
    text = " ".join(str(value).split())
    return _PUNCTUATION.sub(r"\\\1", text)


def class_label(class_id: int, names: list[str]) -> str:
    """``33 · turn right ahead``; just ``7`` when the name is the id itself."""
    name = names[class_id] if class_id < len(names) else str(class_id)
    return str(class_id) if name == str(class_id) else f"{class_id} · {name}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
