"""What one epoch is, for every engine: its mini-batches, its loss floor and the means it reports.

Both engines draw their batches here from the same seeded generator, so for a given seed the
Keras 3 engine and the legacy ``K.function`` engine see the same images in the same order.

    >>> epoch_batches(np.random.default_rng(0), num_samples=100, steps=3, batch_size=32).shape
    (3, 32)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The floor under the target probability in both engines' cross-entropy: the smallest normal
#: float32, so the log never sees 0 yet the gradient still flows for targets the model gives tiny
#: probabilities. A floor of 1e-7 (Keras' epsilon, the original code's) zeroes the gradient of every
#: sample below it: on a confident model (a BatchNorm ResNet, say) a random-start trigger gives every
#: sample less, and the class never moves from its start.
PROB_FLOOR = 1.1754944e-38


@dataclass(frozen=True)
class EpochMetrics:
    """Means over one epoch's mini-batches, as the paper's schedule reads them."""

    loss: float
    ce: float
    l1: float
    asr: float


def epoch_batches(rng: np.random.Generator, num_samples: int, steps: int, batch_size: int) -> np.ndarray:
    """``steps`` rows of ``batch_size`` sample indices, shuffled, each sample once per pass."""
    needed = steps * batch_size
    rounds = -(-needed // num_samples)
    order = np.concatenate([rng.permutation(num_samples) for _ in range(rounds)])
    return order[:needed].astype(np.int32).reshape(steps, batch_size)
