"""Many mini-batches per compiled call: the per-call cost paid once per chunk, not once per step.

Calling a ``tf.function`` from Python costs about 1 ms on 2 CPU cores (argument conversion,
dispatch, the result back to Python): 15 % of a ``signs`` step and 27 % of an MNIST one. A
compiled loop over ``STEPS_PER_CALL`` mini-batches pays it once for the chunk, runs the very
same step in the same order (so a run's numbers do not change), and still returns to Python
often enough for a cancel and the progress bar (a chunk is well under a second).

A step takes one mini-batch's sample indices and the penalty lambda and returns its metrics (an
engine's returns loss, cross-entropy, L1 and attack success). Twelve steps of a step that counts
its samples and echoes lambda run as one chunk of ten and one of two:

    >>> import tensorflow as tf
    >>> step = lambda batch, lam: tf.stack([tf.cast(tf.size(batch), tf.float32), lam])
    >>> run_steps = compile_steps(step, metrics_shape=[2], lam_shape=[])
    >>> batches = np.arange(12 * 32, dtype=np.int32).reshape(12, 32)
    >>> run_in_chunks(run_steps, batches, tf.constant(0.5), on_step=print)
    10
    12
    array([384.,   6.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # TensorFlow loads with the first compiled call: the constant serves every backend
    import tensorflow as tf

#: Mini-batches per compiled call (the paper's schedule has hundreds per epoch, the product's 10),
#: for every engine and the max-margin ascent, on every backend.
STEPS_PER_CALL = 10


def compile_steps(
    step: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], metrics_shape: Sequence[int], lam_shape: Sequence[int]
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """``step(batch_indices, lam)`` looped over a ``(steps, batch)`` block in one compiled call,
    returning the sum of its metrics. One trace serves every chunk length."""
    import tensorflow as tf

    def run(batches: tf.Tensor, lam: tf.Tensor) -> tf.Tensor:
        totals = tf.zeros(metrics_shape)
        for i in tf.range(tf.shape(batches)[0]):
            totals += step(batches[i], lam)
        return totals

    return tf.function(
        run, input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec(lam_shape, tf.float32)]
    )


def run_in_chunks(
    run_steps: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    batches: np.ndarray,
    lam: tf.Tensor,
    on_step: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Every row of ``batches`` through ``run_steps``, ``STEPS_PER_CALL`` at a time; the summed
    metrics. ``on_step(step)`` follows each chunk with the number of steps done (1-based)."""
    import tensorflow as tf

    totals = None
    for start in range(0, len(batches), STEPS_PER_CALL):
        chunk = run_steps(tf.constant(batches[start : start + STEPS_PER_CALL]), lam)
        totals = chunk if totals is None else totals + chunk
        if on_step is not None:
            on_step(min(start + STEPS_PER_CALL, len(batches)))
    return totals.numpy()
