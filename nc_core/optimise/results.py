"""What reverse-engineering one class found: the trigger, its figures, and whether it settled.

:class:`TriggerResult` is what every engine and driver returns, what the run store keeps and what
the detectors judge; :func:`converged` is the verdict's precondition on it.

    >>> converged(reached=True, stopped_early=False, shrink=0.01)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class EpochRecord:
    """One epoch of history: the means the schedule saw, and the lambda it used."""

    epoch: int
    loss: float
    ce: float
    l1: float
    asr: float
    lam: float


@dataclass
class TriggerResult:
    """What reverse-engineering one class found.

    ``mask`` is ``(H, W)`` (``(H, W, C)`` for plain), ``pattern`` ``(H, W, C)`` in unit pixels.
    ``l1`` is the mask's size in pixels; ``asr`` the attack success of this trigger on clean
    samples of the other classes (evaluated after training; NaN when not evaluated);
    ``reached_threshold`` says whether any epoch reached the attack success threshold (if not,
    the mask is the last one, not a minimal one). ``runs_l1`` lists the L1 of every independent
    run when the class was confirmed by restarts (this result is the median one).

    ``stopped_early`` says the schedule's early stop ended the run (the best mask had stalled);
    otherwise the epoch budget did, and ``shrink`` is how much the best L1 still fell over the
    last ``early_stop_patience`` epochs (0 = flat, 1 = it only just reached the threshold).
    ``converged`` is the verdict's precondition: the threshold was reached and the mask had
    stopped shrinking (see :func:`converged`).

    ``full_schedule`` is False for a class a scan only screened (:mod:`nc_core.detection.screen`): its run
    stopped after the screen's epochs because it could not change the verdict. ``screen_l1`` is
    the L1 the screen found (NaN without a screen); ``budget_reference`` marks the classes run in
    full to measure how much a screened mask would still have shrunk.

    In a scan of very many classes (:mod:`nc_core.detection.probe`) ``probe_only`` marks a class that
    was only probed: run a few epochs to see how easily its target is reached, never measured, so
    it has no L1 the rule can judge. ``median_sample`` marks the classes the rule's median and
    spread are measured on: every class, or in such a scan a random sample of them.
    """

    target: int
    method: str
    engine: str
    mask: np.ndarray
    pattern: np.ndarray
    l1: float
    asr: float
    train_asr: float
    reached_threshold: bool
    epochs: int
    steps: int
    seconds: float
    history: list[EpochRecord] = field(default_factory=list)
    runs_l1: list[float] = field(default_factory=list)
    stopped_early: bool = False
    shrink: float = 0.0
    converged: bool = True
    full_schedule: bool = True
    screen_l1: float = float("nan")
    budget_reference: bool = False
    probe_only: bool = False
    median_sample: bool = True


#: A run that ended on its epoch budget still counts as converged when its best L1 fell by at
#: most this share over the last ``early_stop_patience`` epochs.
CONVERGED_SHRINK = 0.05


def recent_shrink(best_l1: list[float], window: int) -> float:
    """How much the best L1 fell over the last ``window`` epochs, as a share of where it was.

    ``best_l1`` is the best-so-far L1 after each epoch (``inf`` before the threshold was first
    reached). 1.0 when the threshold was first reached inside the window: nothing says the mask
    had settled.

    >>> round(recent_shrink([math.inf, 50.0, 40.0, 39.0, 39.0], window=2), 3)
    0.025
    """
    if not best_l1 or not math.isfinite(best_l1[-1]):
        return 1.0
    if len(best_l1) <= window:
        return 1.0
    before = best_l1[-1 - window]
    return 1.0 if not math.isfinite(before) else max(0.0, 1.0 - best_l1[-1] / before)


def converged(reached: bool, stopped_early: bool, shrink: float, penalised: bool = True) -> bool:
    """Whether a class's mask can be trusted as (close to) the smallest trigger it needs.

    It must have reached the attack success threshold, and either been stopped by the schedule's
    own early stop or have stopped shrinking (at most ``CONVERGED_SHRINK``) before the budget
    ran out. The plain objective has no mask penalty, so reaching the threshold is all it can do.

    >>> converged(reached=True, stopped_early=False, shrink=0.5)
    False
    """
    if not reached:
        return False
    return not penalised or stopped_early or shrink <= CONVERGED_SHRINK
