"""Resource limits on untrusted files, in one place, each one raisable from the environment.

Why: a file of a few megabytes can *declare* gigabytes (a zip member compressed 1000 to 1, an npy
header with a huge shape, an HDF5 dataset of zeros, a 31 MB architecture JSON, a model with
400 000 classes). Every limit here is checked from headers, before the expensive read, so no input
under 10 MB makes a scan or an import use more than about 1 GB of memory beyond the model's own
needs, or write more than 100 MB to disk (docs/hostile-inputs.md has the measured peaks).

A deployment that needs more sets the variable named in the error, e.g. ``NC_MAX_CLASSES=20000``;
the value is read once, at import.

    >>> MAX_CLASSES
    10000
"""

from __future__ import annotations

import os

MB = 1024**2


def _setting(name: str, default: int) -> int:
    """``default``, or the positive integer in the environment variable ``name``."""
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = default
    return value if value > 0 else default


#: Members over 1 MB may not unpack to more than this many times their compressed size (zip bombs).
MAX_COMPRESSION_RATIO = _setting("NC_MAX_COMPRESSION_RATIO", 100)
#: A model's architecture JSON (``config.json`` of a ``.keras``, ``model_config`` of an ``.h5``).
MAX_CONFIG_BYTES = _setting("NC_MAX_MODEL_CONFIG_MB", 4) * MB
#: Everything in a ``.keras`` archive besides config, metadata and weights (``assets/``, which
#: Keras writes to a temporary folder while loading).
MAX_MODEL_ASSETS_BYTES = _setting("NC_MAX_MODEL_ASSETS_MB", 16) * MB
#: Weights a model may declare before they are compared with what its architecture needs.
WEIGHTS_CHECK_BYTES = _setting("NC_WEIGHTS_CHECK_MB", 64) * MB
#: Weights of any one model (the sum of its weight arrays).
MAX_WEIGHTS_BYTES = _setting("NC_MAX_WEIGHTS_MB", 4096) * MB
#: Arrays in a model's weights file (HDF5 objects walked to read their shapes).
MAX_WEIGHT_ARRAYS = _setting("NC_MAX_WEIGHT_ARRAYS", 100_000)
#: Classes a model may output: every class gets its own trigger, mask and report row.
MAX_CLASSES = _setting("NC_MAX_CLASSES", 10_000)
#: Pixels (height x width) of a model's input image.
MAX_INPUT_PIXELS = _setting("NC_MAX_INPUT_PIXELS", 4096 * 4096)
#: Values in the images a scan loads (samples x height x width x channels), 256 MB as float32.
MAX_DATA_VALUES = _setting("NC_MAX_DATA_VALUES", 64 * MB)
#: Pixels of one image file, read from its header (decompression bombs).
MAX_IMAGE_PIXELS = _setting("NC_MAX_IMAGE_PIXELS", 4096 * 4096)
#: Pixels decoded from all the image files of one data set together.
MAX_DECODED_PIXELS = _setting("NC_MAX_DECODED_PIXELS", 256 * MB)
#: A run bundle's members together, unpacked, and the arrays its class files declare.
MAX_BUNDLE_UNPACKED_BYTES = _setting("NC_MAX_BUNDLE_MB", 256) * MB


def archive_ratio(members) -> float | None:
    """The compression ratio of a whole archive's ``members`` when it breaks
    ``MAX_COMPRESSION_RATIO``, else None: five hundred 1 MB files of zeros each pass the
    per-member rule, together they are a bomb.

    >>> archive_ratio([])  # nothing to unpack
    """
    unpacked = sum(info.file_size for info in members)
    packed = max(sum(info.compress_size for info in members), 1)
    if unpacked < MB:
        return None
    ratio = unpacked / packed
    return ratio if ratio > MAX_COMPRESSION_RATIO else None


def zip_bomb_ratio(info) -> float | None:
    """A zip member's compression ratio when it breaks ``MAX_COMPRESSION_RATIO``, else None.

    Only members of 1 MB or more are judged: small files may compress as well as they like. The
    one rule for data zips, npz files, ``.keras`` archives, run bundles and audit uploads.

    >>> import zipfile
    >>> zip_bomb_ratio(zipfile.ZipInfo("x"))  # an empty member
    """
    ratio = info.file_size / max(info.compress_size, 1)
    return ratio if info.file_size >= MB and ratio > MAX_COMPRESSION_RATIO else None


def megabytes(nbytes: float) -> str:
    """A size for a sentence: ``megabytes(3 * MB) == '3 MB'``."""
    return f"{nbytes / MB:,.0f} MB" if nbytes >= MB else f"{nbytes / 1024:,.0f} kB"
