"""Outlier detection over the classes' mask sizes: the median absolute deviation test.

A backdoor target needs a far smaller trigger than any other class. With ``l`` the best mask L1
of each class, ``anomaly_index(k) = |l_k - median(l)| / (1.4826 * median(|l - median(l)|))``.
A class is flagged when

- its index exceeds ``threshold`` (2 in the paper): it stands out from the other classes;
- its mask is below the median: an unusually *large* trigger is no backdoor;
- its mask is at most ``max_ratio`` of the median (default one half): it is *far* smaller.

The last condition is the product's, not the paper's. On a 43-class model the smallest of 43
roughly normal L1s lies about 2.2 MADs below the median, so the paper's test alone flags many
clean models, and naturally similar classes ("speed limit 80" next to "speed limit 60") give
consistent natural triggers at 0.6 of the median with an index of 2-4. Injected triggers sit far
lower (the paper's GTSRB backdoor at 0.25 of the median, the shipped samples' at 0.02-0.1).
``max_ratio=1`` restores the paper's rule exactly.

    >>> anomaly_indices([10.0, 50.0, 52.0, 55.0, 49.0]).flagged
    [0]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAD_CONSISTENCY = 1.4826
DEFAULT_THRESHOLD = 2.0
DEFAULT_MAX_RATIO = 0.5


@dataclass(frozen=True)
class Outliers:
    """The MAD statistics of one scan; ``indices`` and ``flagged`` index into the input list."""

    l1: list[float]
    median: float
    mad: float
    indices: list[float]
    flagged: list[int]
    threshold: float
    max_ratio: float = DEFAULT_MAX_RATIO

    @property
    def model_index(self) -> float:
        """The model's anomaly index: the index of its smallest mask (the paper's figure)."""
        return float(self.indices[int(np.argmin(self.l1))]) if self.indices else 0.0


def anomaly_indices(
    l1: list[float] | np.ndarray, threshold: float = DEFAULT_THRESHOLD, max_ratio: float = DEFAULT_MAX_RATIO
) -> Outliers:
    """MAD anomaly index of every class and the classes flagged as backdoor targets.

    When every deviation is zero (MAD 0) no class stands out, and all indices are 0.
    """
    values = np.asarray(l1, np.float64)
    if values.size == 0:
        return Outliers([], 0.0, 0.0, [], [], threshold, max_ratio)
    median = float(np.median(values))
    mad = MAD_CONSISTENCY * float(np.median(np.abs(values - median)))
    if mad > 0:
        indices = np.abs(values - median) / mad
    else:
        indices = np.zeros_like(values)
    outlying = (indices > threshold) & (values < median) & (values <= max_ratio * median)
    flagged = [int(k) for k in np.flatnonzero(outlying)]
    return Outliers(values.tolist(), median, mad, [float(v) for v in indices], flagged, threshold, max_ratio)


def detection_l1(median: float, mad: float, threshold: float, max_ratio: float) -> float:
    """The L1 below which a class is flagged (both conditions of :func:`anomaly_indices`)."""
    return min(median - threshold * mad, max_ratio * median)


def detection_rule(settings: dict) -> dict[str, float]:
    """A stored run's ``threshold`` and ``max_ratio`` (the defaults where its settings name none)."""
    return {"threshold": float(settings.get("threshold", DEFAULT_THRESHOLD)),
            "max_ratio": float(settings.get("max_ratio", DEFAULT_MAX_RATIO))}
