"""Files as users bring them, built in the test: images, npz arrays and zips, hostile ones included."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(color, size=(10, 12), mode="RGB", fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes | None]) -> Path:
    """Write a zip; a ``None`` value makes a directory entry."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            if content is None:
                archive.writestr(zipfile.ZipInfo(name), b"")
            else:
                archive.writestr(name, content)
    return path


def write_npz(path: Path, **arrays) -> Path:
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    return path


class EvilPickle:
    """Unpickling this would create a marker file."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def png_header_and_rows(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of the given size, compressed in chunks so it stays fast to build."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    block = row * 1000
    idat = b"".join(compressor.compress(block) for _ in range(height // 1000)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
