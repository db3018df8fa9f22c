"""Recovered triggers as NumPy arrays: stamping them on images and measuring their masks.

These are the NumPy twins of :class:`nc_core.optimise.trigger.Trigger`, kept apart from it so that
reading, showing and exporting stored results never has to load Keras.

    >>> mask = np.zeros((3, 3)); mask[0, :2] = 1  # two pixels of the top row
    >>> stamp(np.zeros((1, 3, 3, 1)), mask, np.ones((3, 3, 1)))[0, :, :, 0]
    array([[1., 1., 0.],
           [0., 0., 0.],
           [0., 0., 0.]], dtype=float32)
    >>> mask_l1(mask)
    2.0
"""

from __future__ import annotations

import numpy as np

MASK_METHODS = ("neural-cleanse", "plain")


def mask_l1(mask: np.ndarray) -> float:
    """The NumPy twin of :meth:`Trigger.mask_l1` for a recovered ``(H, W)`` or ``(H, W, C)`` mask.

    >>> mask_l1(np.ones((4, 4)))
    16.0
    """
    mask = np.abs(np.asarray(mask, np.float64))
    return float(mask.sum() / (mask.shape[-1] if mask.ndim == 3 else 1))


def stamp(x: np.ndarray, mask: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Apply a recovered trigger to unit-range images with NumPy (for previews and evaluation).

    >>> stamp(np.zeros((1, 2, 2, 1)), np.ones((2, 2)), np.ones((2, 2, 1))).max()
    np.float32(1.0)
    """
    mask = np.asarray(mask, np.float32)
    if mask.ndim == 2:
        mask = mask[..., None]
    return (x * (1 - mask) + mask * np.asarray(pattern, np.float32)).astype(np.float32)
