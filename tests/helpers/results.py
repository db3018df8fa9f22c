"""One class's :class:`TriggerResult`, made without a model: what reports, stores and pages are fed."""

from __future__ import annotations

import math

import numpy as np

from nc_core.optimise.results import EpochRecord, TriggerResult


def random_result(target, l1):
    """A finished class with a random 16x16 mask and colour pattern and two epochs of history."""
    rng = np.random.default_rng(target)
    return TriggerResult(
        target=target,
        method="neural-cleanse",
        engine="keras",
        mask=rng.random((16, 16)).astype(np.float32),
        pattern=rng.random((16, 16, 3)).astype(np.float32),
        l1=l1,
        asr=0.99,
        train_asr=1.0,
        reached_threshold=True,
        epochs=2,
        steps=20,
        seconds=0.5,
        history=[EpochRecord(1, 1.0, 1.0, 9.0, 0.5, 0.0), EpochRecord(2, 0.5, 0.4, l1, 1.0, 0.001)],
    )


def sized_result(
    target: int,
    l1: float,
    full: bool = False,
    screen_l1: float = math.nan,
    reference: bool = False,
    compact: bool = False,
) -> TriggerResult:
    """A class's result with a mask of about ``l1`` pixels: one square patch or scattered pixels."""
    mask = np.zeros((28, 28), np.float32)
    pixels = int(round(l1))
    if compact:
        side = math.ceil(math.sqrt(pixels))
        mask[:side, :side] = pixels / side**2
    else:
        rng = np.random.default_rng(target)
        mask.flat[rng.choice(mask.size, pixels, replace=False)] = 1.0
    return TriggerResult(
        target=target,
        method="neural-cleanse",
        engine="keras",
        mask=mask,
        pattern=np.zeros((28, 28, 1), np.float32),
        l1=float(mask.sum()),
        asr=1.0,
        train_asr=1.0,
        reached_threshold=True,
        epochs=60 if full else 10,
        steps=600 if full else 100,
        seconds=1.0,
        full_schedule=full,
        screen_l1=screen_l1 if full else float(mask.sum()),
        budget_reference=reference,
    )
