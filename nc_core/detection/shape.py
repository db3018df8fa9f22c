"""How compact a recovered mask is: the evidence that separates an injected patch from a natural feature.

A backdoor trigger is a small thing stamped in one place, so the mask Neural Cleanse recovers
for its target sits in a small area. A natural "trigger" of an easy class (the handle of a bag,
the digits of a speed limit) is the model's own feature: drawn over the object, scattered across
the image. TABOR (Guo et al., 2019) penalises scattered masks for this reason; here the idea is
used as a measurement: the share of the mask's mass inside the best ``pieces`` square windows,
each just large enough to hold its share of the mask.

Two pieces, not one, by default: a trigger may be stamped as two patches, and the recovered mask
of a single patch often comes in two parts (a residual net with strided convolutions sees a corner
patch through the border as well; the optimiser keeps the parts of a large patch the model weighs
most and a spot elsewhere). On the evaluation zoo, one window left 4 of 37 real targets below
0.65, two windows 2, while natural masks at under half the median stayed at 0.26-0.58 either way
(BENCHMARKS.md). Natural features spread over many small places, which two windows do not hold.

Windows alone can be fooled by a mask made of a few dense strokes (a natural feature of a sign
drawn in two places), so :func:`boundary` adds the second half of the shape evidence: how long the
mask's edge is for its area. A stamped patch has the shortest edge an area can have; strokes and
scattered pixels have edges several times longer (TABOR's smoothness penalty, measured instead).

    >>> patch = np.zeros((28, 28)); patch[1:4, 1:4] = 1.0
    >>> compactness(patch), boundary(patch)
    (1.0, 1.0)
"""

from __future__ import annotations

import math

import numpy as np

#: Pixels added to each window's side, ``ceil(sqrt(L1 / pieces)) + WINDOW_MARGIN``: an exact square
#: of the piece's size plus one pixel of slack on each side for soft edges and a partial recovery.
WINDOW_MARGIN = 2
#: How many windows the mask may occupy and still count as compact (see the module docstring).
DEFAULT_PIECES = 2


def _window_sums(mask: np.ndarray, side: int) -> np.ndarray:
    """Sum of ``mask`` over every ``side`` x ``side`` window (summed-area table)."""
    table = np.pad(mask, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    return table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]


def _heaviest(plane: np.ndarray, side: int) -> tuple[float, int, int]:
    """The ``side`` x ``side`` window of ``plane`` holding most mass: (its sum, row, column)."""
    sums = _window_sums(plane, side)
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return float(sums[row, col]), int(row), int(col)


def _plane(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The mask as one ``(H, W)`` plane of absolute values (channels averaged, as the L1 is) and
    its sum; the sum is NaN for an empty or non-finite mask, which has no shape."""
    plane = np.abs(np.asarray(mask, np.float64))
    if plane.ndim == 3:
        plane = plane.mean(axis=-1)
    total = float(plane.sum())
    return plane, (total if total > 0 and math.isfinite(total) else float("nan"))


def compactness(mask: np.ndarray, pieces: int = DEFAULT_PIECES) -> float:
    """Share of the mask's L1 inside its best ``pieces`` windows of side ``ceil(sqrt(L1 / pieces)) + 2``.

    Windows are taken greedily (the heaviest first, its pixels then removed). 1.0 for a solid
    square or up to ``pieces`` small patches, about ``pieces * window / image`` for a mask spread
    evenly over the image. ``mask`` is ``(H, W)`` or ``(H, W, C)`` (channels averaged, as the L1
    is). NaN for an empty mask.
    """
    if pieces < 1:
        raise ValueError(f"pieces must be at least 1, not {pieces}")
    remaining, total = _plane(mask)
    if math.isnan(total):
        return total
    side = min(min(remaining.shape), math.ceil(math.sqrt(total / pieces)) + WINDOW_MARGIN)
    held = 0.0
    for _ in range(pieces):
        mass, row, col = _heaviest(remaining, side)
        held += mass
        remaining[row : row + side, col : col + side] = 0.0
    return float(min(1.0, held / total))


def heaviest_window(mask: np.ndarray, side: int) -> tuple[float, int, int]:
    """Share of the mask's L1 in its heaviest ``side`` x ``side`` window, and that window's top-left
    (row, column): where to look for a stamped patch. NaN share for an empty mask.

    >>> patch = np.zeros((28, 28)); patch[5:8, 9:12] = 1.0
    >>> heaviest_window(patch, 4)
    (1.0, 4, 8)
    """
    plane, total = _plane(mask)
    if math.isnan(total):
        return total, 0, 0
    mass, row, col = _heaviest(plane, min(side, *plane.shape))
    return mass / total, row, col


def boundary(mask: np.ndarray) -> float:
    """Length of the mask's edge over that of a solid square of the same L1: ``TV / (4 sqrt(L1))``.

    ``TV`` is the mask's total variation (summed absolute differences between neighbouring
    pixels, inside the image: an edge on the image border is free, as a corner trigger's is).
    1.0 for a solid square away from the border, less for one in a corner or a mask filling the
    image, about ``sqrt(n)`` for ``n`` scattered pixels and ``sqrt(length) / 2`` for a thin stroke.
    ``mask`` is ``(H, W)`` or ``(H, W, C)`` (channels averaged). NaN for an empty mask.

    >>> boundary(np.eye(16))  # a diagonal line of 16 pixels: 3.75 times a 4x4 square's edge
    3.75
    """
    values, total = _plane(mask)
    if math.isnan(total):
        return total
    variation = float(np.abs(np.diff(values, axis=0)).sum() + np.abs(np.diff(values, axis=1)).sum())
    return variation / (4.0 * math.sqrt(total))
