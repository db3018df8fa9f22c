"""How compact a recovered mask is: the evidence that separates an injected patch from a natural feature.

A backdoor trigger is one small thing stamped in one place, so the mask Neural Cleanse recovers
for its target sits in a small window. A natural "trigger" of an easy class (the handle of a
bag, the digits of a speed limit) is the model's own feature: drawn over the object, scattered
across the image. TABOR (Guo et al., 2019) penalises scattered masks for this reason; here the
idea is used as a measurement: the share of the mask's mass inside the best square window just
large enough to hold a compact mask of the same size.

    >>> patch = np.zeros((28, 28)); patch[1:4, 1:4] = 1.0
    >>> compactness(patch)
    1.0
"""
from __future__ import annotations

import math

import numpy as np

#: Pixels added to the side of the window, ``ceil(sqrt(L1)) + WINDOW_MARGIN``: an exact square of
#: the mask's size plus one pixel of slack on each side for soft edges and a partial recovery.
WINDOW_MARGIN = 2


def _window_sums(mask: np.ndarray, side: int) -> np.ndarray:
    """Sum of ``mask`` over every ``side`` x ``side`` window (summed-area table)."""
    table = np.pad(mask, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    return table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]


def compactness(mask: np.ndarray) -> float:
    """Share of the mask's L1 inside the best window of side ``ceil(sqrt(L1)) + WINDOW_MARGIN``.

    1.0 for a solid square (or any blob that fits such a window), about ``window / image`` for a
    mask spread evenly over the image. ``mask`` is ``(H, W)`` or ``(H, W, C)`` (channels averaged,
    as the L1 is). NaN for an empty mask.
    """
    mask = np.abs(np.asarray(mask, np.float64))
    if mask.ndim == 3:
        mask = mask.mean(axis=-1)
    total = float(mask.sum())
    if total <= 0 or not math.isfinite(total):
        return float("nan")
    side = min(min(mask.shape), math.ceil(math.sqrt(total)) + WINDOW_MARGIN)
    return float(min(1.0, _window_sums(mask, side).max() / total))
