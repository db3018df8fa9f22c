"""Seeds and files that make a rebuild of the samples reproducible, byte for byte where it can be.

The backdoored and clean model of a set must start from the same weights and see the training
data in the same order, so that they differ only in the poisoning; and a rebuild is checked with
a byte comparison of its ``.npz`` files.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

SEED = 1234


def seed_everything(seed: int) -> None:
    """Seed numpy, python ``random``, Keras and TensorFlow, and make TensorFlow ops deterministic.

    Called before each model is built, so the backdoored and clean model start from the same
    weights and see the training data in the same order: they differ only in the poisoning.
    """
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def save_npz_deterministic(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez_compressed`` but byte-identical across runs.

    numpy stamps the current time into each zip entry; here every entry gets the same fixed
    date, so that a rebuild can be checked with a byte comparison. No object arrays: the file
    must load with ``allow_pickle=False``.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, value in arrays.items():
            value = np.asarray(value)
            if value.dtype == object:
                raise TypeError(f"{key}: object arrays would need pickle to load")
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, value, allow_pickle=False)
            zf.writestr(info, buffer.getvalue(), compresslevel=9)
