"""Spend the optimisation budget where the verdict is decided: a short screen of every class,
the full schedule only for the classes that could matter.

Most classes of a model are nowhere near the flag line, yet the paper's schedule spends the same
budget on each (K-Arm, Shen et al. 2021, makes the same observation). So a scan first runs every
class for ``screen_epochs`` epochs, with the same settings, and then gives the full schedule to

* the **candidates**: classes that could still matter: their score (:func:`nc_core.detection.detect.detect`)
  is at least ``SCREEN_SCORE`` even if they shrank ``SHRINK_MARGIN`` more than a typical class
  would, or they never reached the attack success threshold;
* a few **reference** classes, the ones nearest the median: their L1 after the screen and after
  the full schedule measure how much a typical mask still shrinks, ``budget_scale``.

The rule then judges every class on the full schedule's scale: a screened class's L1 times
``budget_scale`` (its :func:`full_budget_l1`), a fully run class's own L1. The median is a rank
statistic, so classes far above it need no more precision than that; if a screened class comes
within reach of the flag line on that scale, it is given the full schedule too, and the plan is
made again, until no screened class could change the verdict.

The screen of every class of the MNIST sample, as a scan runs it (one engine, the product's
``screen_epochs``), then the plan: the backdoor's class 7 gets the full schedule, with three
reference classes:

    >>> from nc_core.detection.scan import screened
    >>> from nc_core.optimise.config import CleanseConfig
    >>> from nc_core.optimise.runner import make_engine
    >>> from nc_core.optimise.schedule import reverse_target
    >>> screen = CleanseConfig(epochs=CleanseConfig().screen_epochs)
    >>> engine = make_engine(classifier, data, screen)
    >>> first_pass = [screened(reverse_target(engine, k, screen, len(data))) for k in range(10)]
    >>> candidates, references = plan_full_runs(first_pass, DetectionRule())
    >>> candidates, len(references)
    ([7], 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nc_core.detection.detect import DetectionRule, detect
from nc_core.detection.shape import compactness
from nc_core.optimise.results import TriggerResult

#: A screened class scoring at least this gets the full schedule (1 = flagged; close calls, which
#: get confirmation restarts, start at 0.75, so this leaves a margin for what the screen misjudges).
SCREEN_SCORE = 0.5
#: Classes run in full to measure ``budget_scale``.
REFERENCE_CLASSES = 3
#: How much more than the reference classes a screened class may still shrink. Small masks shrink
#: most: on the evaluation zoo, classes under 0.6 of the median at the screen ended at 0.54 of
#: their screened L1 where the references ended at 0.68 (BENCHMARKS.md); 0.8 covers that.
SHRINK_MARGIN = 0.8
#: Below this many classes a screen saves too little to be worth its approximation.
MIN_CLASSES_TO_SCREEN = 8


def budget_scale(results: Sequence[TriggerResult]) -> float:
    """How much a typical mask shrinks from the screen's budget to the full schedule.

    The geometric median of ``l1 / screen_l1`` over the reference classes; 1.0 without any.
    """
    ratios = [
        r.l1 / r.screen_l1
        for r in results
        if r.budget_reference and r.screen_l1 > 0 and math.isfinite(r.screen_l1) and r.l1 > 0
    ]
    return float(np.exp(np.median(np.log(ratios)))) if ratios else 1.0


def full_budget_l1(result: TriggerResult, scale: float) -> float:
    """The L1 the rule judges a class by: its own if it ran the full schedule, else scaled."""
    return result.l1 if result.full_schedule else result.l1 * scale


def pessimistic_scores(
    l1: Sequence[float],
    shapes: Sequence[float],
    screened: Sequence[bool],
    rule: DetectionRule,
    reference: Sequence[bool] | None = None,
) -> list[float]:
    """Each screened class's score had it shrunk ``SHRINK_MARGIN`` more (NaN for classes run in full).

    One class at a time, the others as judged: "could this class alone still cross the line?"
    Shape is judged by compactness only: a screened mask is still noisy, so its edge
    (:func:`nc_core.detection.shape.boundary`) would understate how compact it will end up.
    ``reference`` is :func:`~nc_core.detection.detect.detect`'s (the classes the median is measured on).
    """
    scores = []
    for k, only_screened in enumerate(screened):
        if not only_screened:
            scores.append(float("nan"))
            continue
        shrunk = list(l1)
        shrunk[k] *= SHRINK_MARGIN
        scores.append(detect(shrunk, shapes, rule, reference=None if reference is None else list(reference)).scores[k])
    return scores


def plan_full_runs(results: Sequence[TriggerResult], rule: DetectionRule) -> tuple[list[int], list[int]]:
    """The screened classes that need the full schedule now: ``(candidates, references)``.

    References are chosen once, when no class is a reference yet: the screened non-candidates
    whose L1 is nearest the median (in log terms), from the median's sample where a probe drew one
    (:mod:`nc_core.detection.probe`). Classes only probed take no part.
    """
    results = sorted((r for r in results if not r.probe_only), key=lambda r: r.target)
    scale = budget_scale(results)
    l1 = [full_budget_l1(r, scale) for r in results]
    screened = [not r.full_schedule for r in results]
    sample = [r.median_sample for r in results]
    scores = pessimistic_scores(l1, [compactness(r.mask) for r in results], screened, rule, reference=sample)
    candidates = [
        k for k, r in enumerate(results) if screened[k] and (scores[k] >= SCREEN_SCORE or not r.reached_threshold)
    ]
    references: list[int] = []
    if not any(r.budget_reference for r in results):
        logs = np.log(np.maximum(l1, 1e-9))
        centre = np.median(logs[np.asarray(sample, bool)]) if any(sample) else np.median(logs)
        others = [k for k in range(len(results)) if screened[k] and sample[k] and k not in candidates]
        references = sorted(others, key=lambda k: abs(logs[k] - centre))[:REFERENCE_CLASSES]
    return [results[k].target for k in candidates], [results[k].target for k in references]
