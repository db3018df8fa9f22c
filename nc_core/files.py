"""Writing files so that a reader never sees half of one: every layer that stores something uses it.

A run's classes, an upload, an audit's state and an imported bundle are all read by other
processes while they are written (a page refreshing, a worker resuming), so each goes to a
temporary file in the same folder and is renamed over the old one.

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> atomic_write(folder / "a.json", b"{}"); (folder / "a.json").read_bytes()
    b'{}'
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """The bytes of an uncompressed ``.npz`` of ``arrays``, for :func:`atomic_write`.

    >>> npz_bytes(x=np.zeros(2))[:2]
    b'PK'
    """
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
