"""Lazy public names for a package: imported on first use, so ``python -m nc_core --help`` and the
command line's parser load no Keras.

    >>> __getattr__ = lazy_getattr(__name__, {"scan": "nc_core.detection.scan"})
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) when ``name`` is asked for."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
