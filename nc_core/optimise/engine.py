"""The Keras 3 training engine: one compiled step that updates only the trigger.

The tutorial compiled its update once with ``optimizer.get_updates`` and ``K.function`` and
then called ``train([x_batch, y_target])`` per batch. Keras 3 has neither; the equivalent is one
``tf.function`` whose target class and lambda are tensors, so a single trace serves every class
of a scan (a new trace per class costs 0.3-0.5 s and warns about retracing). Between classes the
trigger and the optimiser's moments are reset with ``assign``.

One epoch of class 7 without the mask penalty: the random starting mask (about half the image)
already sends almost every digit to 7.

    >>> engine = KerasEngine(classifier, x_unit, PixelRange.parse("0-255"))
    >>> engine.start_target(7, seed=0); engine.run_epoch(lam=0.0, steps=10)
    EpochMetrics(loss=0.01..., ce=0.01..., l1=415.7..., asr=0.99...)
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from nc_core.loading.pixels import PixelRange
from nc_core.optimise.epoch import PROB_FLOOR, EpochMetrics, epoch_batches
from nc_core.optimise.steps import compile_steps, run_in_chunks
from nc_core.optimise.trigger import Trigger


def build_triggered_model(trigger: Trigger, classifier: keras.Model, pixel_range: PixelRange) -> keras.Model:
    """The tutorial's composition: ``Sequential([trigger, preprocessing, frozen_model])``.

    The trigger works on unit pixels; ``Rescaling`` maps them to the range the model expects.
    """
    classifier.trainable = False
    to_model_range = keras.layers.Rescaling(
        scale=np.float32(pixel_range.scale), offset=np.float32(pixel_range.offset), name="to_model_range"
    )
    return keras.Sequential([trigger, to_model_range, classifier], name="triggered_model")


class KerasEngine:
    """Optimise a trigger against a frozen classifier, one epoch at a time.

    Args:
        classifier: a Keras model whose outputs are class probabilities.
        x_unit: clean images in [0, 1], ``(N, H, W, C)``; labels are not needed. A float32
            tensor is used as it is, so engines on several threads can share one copy.
        pixel_range: the range the classifier expects its inputs in.
        method: ``"neural-cleanse"`` or ``"plain"`` (see :class:`~nc_core.optimise.trigger.Trigger`).
        batch_size, learning_rate, beta_1, beta_2: Adam and mini-batch settings.
    """

    name = "keras"

    def __init__(
        self,
        classifier: keras.Model,
        x_unit: np.ndarray,
        pixel_range: PixelRange,
        method: str = "neural-cleanse",
        batch_size: int = 32,
        learning_rate: float = 0.1,
        beta_1: float = 0.5,
        beta_2: float = 0.9,
    ):
        self.batch_size = int(batch_size)
        self._x = x_unit if isinstance(x_unit, tf.Tensor) else tf.constant(np.asarray(x_unit, np.float32))
        self._num_samples = len(x_unit)
        self.trigger = Trigger(method)
        self.trigger.build((None, *x_unit.shape[1:]))
        self.model = build_triggered_model(self.trigger, classifier, pixel_range)
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)
        self.optimizer.build(self.trigger.trainable_variables)
        self._rng = np.random.default_rng(0)
        self._target = tf.Variable(0, dtype=tf.int32, trainable=False)
        self._steps = compile_steps(self._train_step, metrics_shape=[4], lam_shape=[])

    def warm_up(self) -> None:
        """Trace the compiled steps now (about a second), on the calling thread, not on first use."""
        self._steps.get_concrete_function()

    def start_target(self, target: int, seed: int = 0) -> None:
        """Reset trigger and optimiser for a new target class, keeping the compiled step."""
        self._target.assign(int(target))
        self.trigger.reset(seed)
        self._rng = np.random.default_rng(seed)
        for variable in self.optimizer.variables:
            if not variable.path.endswith("learning_rate"):
                variable.assign(np.zeros(variable.shape, variable.dtype))

    def _train_step(self, batch_indices, lam):
        x = tf.gather(self._x, batch_indices)
        weights = self.trigger.trainable_variables
        with tf.GradientTape() as tape:
            probs = self.model(x, training=False)
            target_prob = tf.gather(probs, self._target, axis=1)
            ce = -tf.reduce_mean(tf.math.log(tf.maximum(target_prob, PROB_FLOOR)))
            l1 = self.trigger.mask_l1()
            loss = ce + lam * l1
        grads = tape.gradient(loss, weights)
        self.optimizer.apply_gradients(zip(grads, weights))
        hits = tf.equal(tf.argmax(probs, axis=1, output_type=tf.int32), self._target)
        return tf.stack([loss, ce, l1, tf.reduce_mean(tf.cast(hits, tf.float32))])

    def run_epoch(self, lam: float, steps: int, on_step: Callable[[int], None] | None = None) -> EpochMetrics:
        """Run ``steps`` mini-batches with the mask penalty ``lam``; return the epoch's means.

        ``on_step(step)`` is called with the steps done (1-based) after every compiled chunk of
        steps (:mod:`nc_core.optimise.steps`) to drive progress displays and cancels.
        """
        batches = epoch_batches(self._rng, self._num_samples, steps, self.batch_size)
        totals = run_in_chunks(self._steps, batches, tf.constant(lam, tf.float32), on_step)
        loss, ce, l1, asr = (totals / steps).tolist()
        return EpochMetrics(loss=loss, ce=ce, l1=l1, asr=asr)

    def snapshot(self) -> dict:
        """The trigger, the optimiser's moments and the sampler: enough to continue this run later."""
        return {
            "target": int(self._target.numpy()),
            "trigger": [np.array(v.numpy()) for v in self.trigger.weights],
            "optimizer": [np.array(v.numpy()) for v in self.optimizer.variables],
            "rng": self._rng.bit_generator.state,
        }

    def restore(self, state: dict) -> None:
        """Continue a run from its :meth:`snapshot` (the compiled step is kept)."""
        self._target.assign(state["target"])
        for variable, value in zip(self.trigger.weights, state["trigger"]):
            variable.assign(value)
        for variable, value in zip(self.optimizer.variables, state["optimizer"]):
            variable.assign(value)
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["rng"]

    def current_trigger(self) -> tuple[np.ndarray, np.ndarray]:
        """The mask ``(H, W)`` (or ``(H, W, C)`` for plain) and pattern ``(H, W, C)`` now."""
        mask = np.asarray(self.trigger.mask(), np.float32)
        if mask.shape[-1] == 1:
            mask = mask[..., 0]
        return mask, np.asarray(self.trigger.pattern(), np.float32)
