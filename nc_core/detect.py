"""Outlier detection over the classes' mask sizes: the median absolute deviation test.

A backdoor target needs a far smaller trigger than any other class. With ``l`` the best mask L1
of each class, ``anomaly_index(k) = |l_k - median(l)| / (1.4826 * median(|l - median(l)|))``;
a class is flagged when its index exceeds the threshold (2 in the paper) *and* its mask is
smaller than the median (an unusually large trigger is no backdoor).

    >>> anomaly_indices([10.0, 50.0, 52.0, 55.0, 49.0]).flagged
    [0]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAD_CONSISTENCY = 1.4826
DEFAULT_THRESHOLD = 2.0


@dataclass(frozen=True)
class Outliers:
    """The MAD statistics of one scan; ``indices`` and ``flagged`` index into the input list."""

    l1: list[float]
    median: float
    mad: float
    indices: list[float]
    flagged: list[int]
    threshold: float

    @property
    def model_index(self) -> float:
        """The model's anomaly index: the index of its smallest mask (the paper's figure)."""
        return float(self.indices[int(np.argmin(self.l1))]) if self.indices else 0.0


def anomaly_indices(l1: list[float] | np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> Outliers:
    """MAD anomaly index of every class and the classes flagged as backdoor targets.

    When every deviation is zero (MAD 0) no class stands out, and all indices are 0.
    """
    values = np.asarray(l1, np.float64)
    if values.size == 0:
        return Outliers([], 0.0, 0.0, [], [], threshold)
    median = float(np.median(values))
    mad = MAD_CONSISTENCY * float(np.median(np.abs(values - median)))
    if mad > 0:
        indices = np.abs(values - median) / mad
    else:
        indices = np.zeros_like(values)
    flagged = [int(k) for k in np.flatnonzero((indices > threshold) & (values < median))]
    return Outliers(values.tolist(), median, mad, [float(v) for v in indices], flagged, threshold)
