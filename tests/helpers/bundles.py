"""Run bundles built in memory, as the Runs page and ``RunStore.import_bundle`` receive them."""

from __future__ import annotations

import io
import zipfile

import numpy as np

#: A bundle's run.json that passes every check.
VALID_RUN = {"kind": "scan", "status": "done", "model": "m.keras", "data": "d.npz", "settings": {}, "created": 1.0}


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def zip_bytes(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return buffer.getvalue()
