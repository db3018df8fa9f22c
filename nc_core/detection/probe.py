"""Scans of very many classes: probe every class, screen a sample and the easiest targets.

The screen (:mod:`nc_core.detection.screen`) gives every class ``screen_epochs`` epochs, so a
scan's cost still grows with the number of classes times the model's cost: a 1,000-class model
would need 1,000 screens. The paper met the same wall on its 2,622-label face model and spent a
few epochs on every label, then the full run on the top candidates; K-Arm (Shen et al., ICML
2021) ranks classes by how fast their objective falls. Two facts make that safe here:

* **the rule needs the median and the spread of the L1s, not every L1.** Both are rank
  statistics, which a random sample of classes estimates without bias (``MEDIAN_SAMPLE`` of
  them: the median's standard error is then about a sixth of the spread);
* **a backdoor target is the easiest class to reach.** In a probe of ``probe_epochs`` epochs,
  before the mask penalty starts, the classification loss of a trigger towards the target falls
  far faster than towards any other class (on the signs twin, a mean of 0.46 against a median of
  1.53 and a next-best of 0.96 after two epochs, BENCHMARKS.md).

So a scan of at least ``PROBE_MIN_CLASSES`` classes probes every class, then screens only the
random sample and the ``PROBE_CANDIDATES`` classes whose probe loss was lowest (each continuing
from its probe). From there the screen's plan runs as always; the rule measures its median and
spread on the sample and judges every screened class against them. The cost is
``K * probe_epochs`` plus a fixed part, instead of ``K * screen_epochs``.

Which classes a 200-class scan screens, from the probe's losses (class 42 the easiest):

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> losses = {k: float(rng.uniform(1.0, 3.0)) for k in range(200)}
    >>> losses[42] = 0.2
    >>> sample, candidates = promoted(losses, seed=0)
    >>> len(sample), len(candidates), 42 in candidates
    (48, 24, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.results import TriggerResult

#: Random classes the rule's median and spread are measured on.
MEDIAN_SAMPLE = 48
#: Classes with the lowest probe loss that are screened besides the sample.
PROBE_CANDIDATES = 24
#: Below this many classes a probe saves too little (it screens ``MEDIAN_SAMPLE +
#: PROBE_CANDIDATES`` of them anyway) to be worth its approximation.
PROBE_MIN_CLASSES = 2 * (MEDIAN_SAMPLE + PROBE_CANDIDATES)


def probe_epochs(config: CleanseConfig, num_classes: int, screen: int) -> int:
    """The probe's epochs for a scan of ``num_classes`` screened for ``screen`` epochs; 0 for none.

    >>> probe_epochs(CleanseConfig(), 1000, screen=10), probe_epochs(CleanseConfig(), 43, screen=10)
    (2, 0)
    """
    if screen <= 0 or not 0 < config.probe_epochs < screen or num_classes < PROBE_MIN_CLASSES:
        return 0
    return config.probe_epochs


def margin_sample(config: CleanseConfig, num_classes: int) -> list[int] | None:
    """The classes the max-margin test measures in full and fits its null to, in a model of very
    many classes (the leaders of its own probe join them); None: measure every class in full.

    >>> len(margin_sample(CleanseConfig(), 1000)), margin_sample(CleanseConfig(), 43)
    (48, None)
    """
    if config.probe_epochs <= 0 or num_classes < PROBE_MIN_CLASSES:
        return None
    return median_sample(range(num_classes), config.seed)


def probe_loss(result: TriggerResult) -> float:
    """How hard a class's target is to reach: the mean classification loss of its probe's epochs."""
    losses = [h.ce for h in result.history if math.isfinite(h.ce)]
    return float(np.mean(losses)) if losses else math.inf


def probed(result: TriggerResult) -> TriggerResult:
    """A probe's run as the report keeps it until the class is screened: no L1 to judge."""
    return replace(result, full_schedule=False, probe_only=True, median_sample=False)


def median_sample(classes: Sequence[int], seed: int) -> list[int]:
    """The random classes the median and spread are measured on, sorted.

    Drawn from the scan's seed and class list, before the probe, so a resumed scan draws the same.

    >>> median_sample(range(10), seed=0) == list(range(10))  # fewer classes than a sample: all
    True
    """
    classes = sorted(int(c) for c in classes)
    rng = np.random.default_rng([seed, len(classes)])
    return sorted(int(c) for c in rng.choice(classes, min(MEDIAN_SAMPLE, len(classes)), replace=False))


def easiest(losses: Mapping[int, float], sample: Sequence[int]) -> list[int]:
    """The ``PROBE_CANDIDATES`` classes outside ``sample`` whose probe loss is lowest, sorted."""
    chosen = set(sample)
    others = sorted((c for c in losses if c not in chosen), key=lambda c: (losses[c], c))
    return sorted(others[:PROBE_CANDIDATES])


def promoted(losses: Mapping[int, float], seed: int) -> tuple[list[int], list[int]]:
    """The classes to screen after a probe of every class in ``losses``: ``(sample, candidates)``."""
    sample = median_sample(list(losses), seed)
    return sample, easiest(losses, sample)
