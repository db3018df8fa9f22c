"""Whatever Keras raised while loading a model, as one sentence a user understands.

Keras reports a refused ``Lambda``, an unknown custom layer and a truncated file as ``ValueError``,
``TypeError`` or ``OSError`` with messages meant for developers; the deepest cause of the chain
is the most specific, so it decides the sentence.

    >>> type(load_error("m.keras", ValueError("Requested the deserialization of a Lambda: arbitrary code"))).__name__
    'UnsafeModelError'
"""

from __future__ import annotations

import re

from nc_core.errors import ModelLoadError, UnsafeModelError

_CLASS_PATTERNS = (
    re.compile(r"Could not locate (?:class|function) '([^']+)'"),
    re.compile(r"Unknown (?:layer|object|activation|class)[^']*'([^']+)'"),
)


def load_error(name: str, error: BaseException) -> ModelLoadError:
    """Turn whatever Keras raised into one sentence; the deepest cause is the most specific."""
    chain = _exception_chain(error)
    text = " ".join(str(e) for e in chain)
    if "safe_mode" in text or "arbitrary code" in text or "Non-modeling APIs" in text:
        return UnsafeModelError(unsafe_message("code that Keras safe mode refuses"))
    for pattern in _CLASS_PATTERNS:
        match = pattern.search(text)
        if match:
            cls = match.group(1).split(">")[-1]
            return ModelLoadError(
                f"The model uses a custom layer or function {cls!r} that the scanner does not know: "
                "only models built from built-in Keras layers can be loaded."
            )
    detail = " ".join(str(chain[-1]).split())[:200] or type(chain[-1]).__name__
    return ModelLoadError(f"Keras could not load {name!r} (is it complete and saved by Keras 3?): {detail}")


def _exception_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    while error is not None and error not in chain and len(chain) < 20:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def unsafe_message(what: str) -> str:
    """The sentence for a model that carries code: what it holds, and how to save it without."""
    return (
        f"The model holds Python code ({what}) that is refused for safety: "
        "rebuild it with built-in Keras layers only, without Lambda layers, and save it again."
    )
