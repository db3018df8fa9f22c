"""User-controlled text, shown as text: never as Markdown, HTML or a link.

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
