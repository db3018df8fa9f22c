"""Patch triggers and BadNets poisoning: what makes a sample model backdoored.

The trigger's card describes it in words and numbers, so that a reader (or a test) can stamp the
same trigger and compare it with what Neural Cleanse reverse-engineers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trigger:
    """A patch trigger: ``pattern`` (h, w) uint8 values written on all channels at (row, col).

    The card describes it in words and numbers, so that a reader (or a test) can stamp the same
    trigger and compare it with what Neural Cleanse reverse-engineers.
    """

    shape: str
    location: str
    row: int
    col: int
    pattern: np.ndarray

    def stamp(self, x: np.ndarray) -> np.ndarray:
        """A copy of ``x`` (N, H, W, C) uint8 with the trigger written in; every pixel of the
        patch is overwritten, the zeros of a pattern included."""
        out = x.copy()
        h, w = self.pattern.shape
        out[:, self.row : self.row + h, self.col : self.col + w, :] = self.pattern[None, :, :, None]
        return out

    def card(self) -> dict:
        """The ``trigger`` object of a model card."""
        h, w = self.pattern.shape
        values = sorted({int(v) for v in self.pattern.ravel()})
        card: dict = {
            "kind": "patch",
            "shape": self.shape,
            "size": h if h == w else [h, w],
            "location": self.location,
            "row": self.row,
            "col": self.col,
            "value": values[0] if len(values) == 1 else max(values),
            "channels": "all",
        }
        if len(values) > 1:
            card["pattern"] = self.pattern.tolist()
        return card


def poison(
    x: np.ndarray, y: np.ndarray, trigger: Trigger, target: int, rate: float, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """BadNets poisoning: stamp the trigger on ``rate`` of the training set and relabel it ``target``.

    Only images of other classes are picked (an image already of the target class teaches
    nothing). The poisoned images REPLACE their clean originals, so both models of a set train
    on the same number of images in the same order. Returns (x, y, number poisoned).
    """
    rng = np.random.default_rng([seed, 99])
    candidates = np.flatnonzero(y != target)
    n_poison = int(round(rate * len(y)))
    picked = np.sort(rng.choice(candidates, size=n_poison, replace=False))
    x, y = x.copy(), y.copy()
    x[picked] = trigger.stamp(x[picked])
    y[picked] = target
    return x, y, n_poison
