"""Which classes are backdoor targets: mask size, measured robustly, weighed with mask shape.

Neural Cleanse's premise is that a backdoor target needs a far smaller trigger than any other
class. The paper tests it with the median absolute deviation of the raw mask L1s
(``anomaly_index(k) = |l_k - median(l)| / (1.4826 * MAD)``, flagged above 2 and below the
median). :func:`anomaly_indices` keeps that figure for every class, so results stay comparable
with the literature. The verdict, though, comes from :func:`detect`, because on models nobody
here trained the paper's test fails both ways (measured on the evaluation zoo, BENCHMARKS.md):

* it misses real backdoors on data with naturally easy classes: a bag or a shirt needs a mask
  at 0.3-0.6 of the median even in a clean Fashion-MNIST model, which widens the raw MAD so much
  that a target at 0.1 of the median is not 2 MADs out;
* it flags clean models: the smallest of 40 roughly normal L1s lies about 2.2 MADs below the
  median, and naturally similar classes (speed limit 80 beside 60) give real, reproducible
  natural triggers at 0.5-0.6 of the median.

The product's rule flags class ``k`` when all of these hold:

1. **it stands out**, measured on *log* L1s (mask sizes are positive and spread by factors, so
   a class 4x smaller than the median is as far out as one 4x larger): ``log_index(k) =
   (median(log l) - log l_k) / (1.4826 * MAD(log l))`` above ``threshold`` (the paper's 2),
   lowered for a mask that is far smaller than condition 2 asks: the threshold is divided by
   ``sqrt(min(far_smaller, SIZE_CREDIT_CAP))``, where ``far_smaller`` is condition 2's ratio below
   (a compact mask at a quarter of the median needs a log index of 1.41, not 2). Evidence is
   weighed, not only counted: a residual net's natural masks can spread over 5x, so a compact
   mask 3.4x below the median (2.2x below the next class) is only 1.65 deviations out (the
   zoo's ``mnist-patch4-tr``), yet size and shape together leave little doubt. The credit runs
   one way only: a class that stands out far but is not far smaller gets none, since naturally
   similar classes do exactly that (a clean signs ResNet's compact "speed limit" mask at 0.57 of
   the median, 2.8 deviations out);
2. **it is far smaller**: ``l_k / median(l)`` at most ``max_ratio`` (one half), since a class
   that is statistically out but still needs half the median's pixels is no injected trigger;
3. **it looks injected**: its mask is compact, *or* it is so small (at most ``extreme_ratio`` of
   the median) that shape is no longer asked for. Compact means both halves of
   :mod:`nc_core.detection.shape`: its mass lies in at most two small windows
   (:func:`~nc_core.detection.shape.compactness`
   at least ``min_compactness``), as a stamped trigger's does where natural features are scattered
   over the object, *and* its edge is short for its area (:func:`~nc_core.detection.shape.boundary` at most
   ``max_boundary``, three times a solid square's), which a few dense strokes that happen to fit
   two windows do not have. Tiny masks are exempt because blended full-image triggers give their
   targets scattered masks at 0.01-0.15 of the median, where natural classes rarely come (the
   zoo's exception, a clean Fashion-MNIST "bag" at 0.15, is a known false positive: BENCHMARKS.md).

Each condition is a ratio that is 1 on its boundary, and a class's ``score`` is the smallest of
them (condition 3: the larger of "compact", itself the smaller of its two ratios, and "tiny"):
a class is flagged exactly when its score exceeds 1, and a model's score, its largest class
score, is the continuous figure behind the verdict (the detection zoo's ROC-AUC is computed on it).

    >>> detect([10.0, 50.0, 52.0, 55.0, 49.0], [1.0, 0.3, 0.4, 0.3, 0.2]).flagged
    [0]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

MAD_CONSISTENCY = 1.4826
DEFAULT_THRESHOLD = 2.0
DEFAULT_MAX_RATIO = 0.5
DEFAULT_MIN_COMPACTNESS = 0.65
DEFAULT_EXTREME_RATIO = 0.2
#: On the evaluation zoo real targets' masks reach 2.75 and natural masks under half the median
#: start at 3.0; every value from 3 to 4 gives the same verdicts there (BENCHMARKS.md).
DEFAULT_MAX_BOUNDARY = 3.0
#: A floor on the spread of log L1s: classes all within a few percent of each other are as alike
#: as restarts of one class are (+-10-20 % at the product budget), not a scale to measure by.
MIN_LOG_SPREAD = 0.1
#: How far condition 2's ratio may lower condition 1's bar (the square root of it): at most by
#: sqrt(2), reached by a mask at ``max_ratio ** 2`` of the median (a quarter, by default).
SIZE_CREDIT_CAP = 2.0


@dataclass(frozen=True)
class DetectionRule:
    """The parameters of :func:`detect`, with the product's defaults (see the module docstring)."""

    threshold: float = DEFAULT_THRESHOLD
    max_ratio: float = DEFAULT_MAX_RATIO
    min_compactness: float = DEFAULT_MIN_COMPACTNESS
    extreme_ratio: float = DEFAULT_EXTREME_RATIO
    max_boundary: float = DEFAULT_MAX_BOUNDARY
    #: The max-margin test's p-value line (:mod:`nc_core.detection.margin`): MM-BD's 0.05 flags 19 %
    #: of the zoo's clean development models (BNN ResNets, MLPs); 1e-4 is the largest line that
    #: keeps them under 5 % there (BENCHMARKS.md).
    margin_p: float = 1e-4

    @classmethod
    def from_settings(cls, settings: dict) -> DetectionRule:
        """A stored run's rule (the defaults where its settings name none)."""
        return cls(**{k: float(settings[k]) for k in asdict(cls()) if settings.get(k) is not None})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Outliers:
    """The paper's MAD statistics of one scan; ``indices`` and ``flagged`` index into the input list."""

    l1: list[float]
    median: float
    mad: float
    indices: list[float]
    flagged: list[int]
    threshold: float
    max_ratio: float = 1.0

    @property
    def model_index(self) -> float:
        """The model's anomaly index: the index of its smallest mask (the paper's figure)."""
        values = np.asarray(self.l1, np.float64)
        return float(self.indices[int(np.nanargmin(values))]) if np.isfinite(values).any() else 0.0


def anomaly_indices(
    l1: list[float] | np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    max_ratio: float = 1.0,
    reference: list[bool] | None = None,
) -> Outliers:
    """The paper's MAD anomaly index of every class, and the classes its test flags.

    ``max_ratio=1`` is the paper's rule exactly (index above ``threshold``, below the median);
    a smaller value adds "at most this share of the median". When every deviation is zero (MAD 0)
    no class stands out, and all indices are 0. ``reference`` is :func:`detect`'s.
    """
    values = np.asarray(l1, np.float64)
    if values.size == 0 or not np.isfinite(values).any():
        return Outliers(values.tolist(), 0.0, 0.0, [0.0] * values.size, [], threshold, max_ratio)
    measured = _measured(values, reference)
    median = float(np.median(values[measured]))
    mad = MAD_CONSISTENCY * float(np.median(np.abs(values[measured] - median)))
    indices = np.abs(values - median) / mad if mad > 0 else np.zeros_like(values)
    outlying = (indices > threshold) & (values < median) & (values <= max_ratio * median)
    flagged = [int(k) for k in np.flatnonzero(outlying)]
    return Outliers(values.tolist(), median, mad, [float(v) for v in indices], flagged, threshold, max_ratio)


@dataclass(frozen=True)
class Detection:
    """The product rule's figures for one scan; lists index into the input lists."""

    median: float
    log_spread: float
    log_indices: list[float]
    ratios: list[float]
    scores: list[float]
    flagged: list[int]
    rule: DetectionRule
    #: Per class, conditions 1 and 2 alone (stands out, far smaller): above 1 for a size outlier,
    #: whatever its shape (:mod:`nc_core.detection.fusion` never lets such a class read clean).
    size_scores: list[float] | None = None

    @property
    def size_outliers(self) -> list[int]:
        return [k for k, s in enumerate(self.size_scores or []) if s > 1]

    @property
    def score(self) -> float:
        """The model's score: its largest class score (above 1 means a class is flagged)."""
        finite = [s for s in self.scores if math.isfinite(s)]
        return max(finite) if finite else 0.0


def size_credit(ratio: float, max_ratio: float) -> float:
    """How much more condition 1's index counts for a mask at ``ratio`` of the median (at least 1).

    ``sqrt(min(log(ratio) / log(max_ratio), SIZE_CREDIT_CAP))`` once the mask is below
    ``max_ratio``; 1 above it, or when ``max_ratio`` is 1 or more (condition 2 then asks nothing).

    >>> size_credit(0.6, 0.5), round(size_credit(0.25, 0.5), 3), round(size_credit(0.01, 0.5), 3)
    (1.0, 1.414, 1.414)
    """
    if not (max_ratio < 1 and ratio < max_ratio):
        return 1.0
    return math.sqrt(min(_shrink_score(ratio, max_ratio), SIZE_CREDIT_CAP))


def detection_l1(median: float, log_spread: float, rule: DetectionRule) -> float:
    """The L1 below which a *compact* mask is flagged (conditions 1 and 2 of the rule).

    In log distance below the median, ``u = log(median / l)``, condition 2 is ``u >= u2`` with
    ``u2 = -log(max_ratio)`` and condition 1 is ``u * sqrt(min(u / u2, cap)) >= threshold *
    spread``; its left side grows with ``u``, so the line is where both first hold.
    """
    if not math.isfinite(median) or median <= 0:
        return 0.0
    needed = rule.threshold * log_spread
    if rule.max_ratio >= 1:
        return min(median * math.exp(-needed), rule.max_ratio * median)
    u2 = -math.log(rule.max_ratio)
    u = (needed**2 * u2) ** (1 / 3)  # u * sqrt(u / u2) = needed, while u / u2 is below the cap
    if u > SIZE_CREDIT_CAP * u2:
        u = needed / math.sqrt(SIZE_CREDIT_CAP)
    return median * math.exp(-max(u, u2))


def extreme_l1(median: float, log_spread: float, rule: DetectionRule) -> float:
    """The L1 below which *any* mask is flagged, whatever its shape."""
    return min(detection_l1(median, log_spread, rule), rule.extreme_ratio * max(median, 0.0))


def _shrink_score(ratio: float, bound: float) -> float:
    """``log(ratio) / log(bound)``: 1 at the bound, above 1 for smaller ratios (bound < 1)."""
    if ratio <= 0:
        return math.inf
    return math.log(ratio) / math.log(bound) if bound < 1 else (math.inf if ratio <= 1 else -math.inf)


def detect(
    l1: list[float] | np.ndarray,
    compactness: list[float] | np.ndarray,
    rule: DetectionRule = DetectionRule(),
    eligible: list[bool] | None = None,
    boundary: list[float] | np.ndarray | None = None,
    reference: list[bool] | None = None,
) -> Detection:
    """The product rule over one scan's classes (see the module docstring).

    ``eligible`` marks classes that may be flagged at all (a class whose optimisation never
    reached the attack success threshold has no working trigger); all of them by default.
    ``boundary`` is each mask's :func:`nc_core.detection.shape.boundary`; without it (or where it is NaN)
    compactness alone stands for shape. ``reference`` marks the classes the median and spread
    are measured on (a random sample of a very large scan's classes, :mod:`nc_core.detection.probe`);
    all of them by default. A class whose L1 is not a number (only probed) gets a NaN score.

    >>> detect([20.0, 21.0, 22.0, 23.0, 24.0], [0.9] * 5).flagged
    []
    """
    values = np.asarray(l1, np.float64)
    shape = np.asarray(compactness, np.float64)
    edges = np.full(values.shape, np.nan) if boundary is None else np.asarray(boundary, np.float64)
    if values.size == 0:
        return Detection(0.0, 0.0, [], [], [], [], rule, [])
    logs = np.log(np.maximum(values, 1e-9))
    measured = _measured(values, reference)
    centre = float(np.median(logs[measured]))
    spread = max(MAD_CONSISTENCY * float(np.median(np.abs(logs[measured] - centre))), MIN_LOG_SPREAD)
    median = float(np.median(values[measured]))
    log_indices = (centre - logs) / spread
    ratios = values / median if median > 0 else np.ones_like(values)
    scores, size_scores = [], []
    for k in range(values.size):
        if not math.isfinite(values[k]):
            scores.append(math.nan)
            size_scores.append(0.0)
            continue
        stands_out = log_indices[k] / rule.threshold * size_credit(ratios[k], rule.max_ratio)
        far_smaller = _shrink_score(ratios[k], rule.max_ratio)
        compact = shape[k] / rule.min_compactness if math.isfinite(shape[k]) else 0.0
        if math.isfinite(edges[k]) and edges[k] > 0:
            compact = min(compact, rule.max_boundary / edges[k])
        looks_injected = max(compact, _shrink_score(ratios[k], rule.extreme_ratio))
        scores.append(float(min(stands_out, far_smaller, looks_injected)))
        size_scores.append(float(min(stands_out, far_smaller)) if allowed_at(eligible, k) else 0.0)
    flagged = [k for k, s in enumerate(scores) if s > 1 and allowed_at(eligible, k)]
    return Detection(
        median, spread, [float(v) for v in log_indices], [float(r) for r in ratios], scores, flagged, rule, size_scores
    )


def _measured(values: np.ndarray, reference: list[bool] | None) -> np.ndarray:
    """Which classes the median and spread are measured on: the reference ones with a finite L1."""
    finite = np.isfinite(values)
    chosen = finite if reference is None else finite & np.asarray(reference, bool)
    return chosen if chosen.any() else finite


def allowed_at(eligible: list[bool] | None, k: int) -> bool:
    return eligible is None or bool(eligible[k])
