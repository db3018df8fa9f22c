"""The ``Trigger`` layer: ``x * (1 - m) + m * p`` with a trainable mask ``m`` and pattern ``p``.

Put it in front of a frozen classifier and train only its weights, and it learns the smallest
patch that sends every input to one class. It works on unit pixels (images in [0, 1]); the map to
the model's own input range comes after it (see :mod:`nc_core.loading.pixels`).

Two parametrisations:

- ``"plain"``, the tutorial's: mask and pattern are free ``(H, W, C)`` weights starting at zero.
- ``"neural-cleanse"``, the paper's: a one-channel mask ``(H, W, 1)`` broadcast over colours,
  both kept in range through tanh space, ``m = tanh(m_raw) / (2 - eps) + 0.5``, random start.

In front of the frozen MNIST sample, whose inputs are 0-255 pixels
(:func:`nc_core.optimise.engine.build_triggered_model` does this for any range):

    >>> classifier.trainable = False
    >>> triggered = keras.Sequential([Trigger("neural-cleanse"), keras.layers.Rescaling(255.0), classifier])
    >>> triggered(x_unit[:4]).shape
    TensorShape([4, 10])
    >>> [weight.name for weight in triggered.trainable_weights]  # only the trigger trains
    ['mask', 'pattern']
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from nc_core.optimise.masks import MASK_METHODS, mask_l1, stamp  # noqa: F401  (NumPy twins, re-exported)


@keras.saving.register_keras_serializable(package="nc_core")
class Trigger(keras.layers.Layer):
    """Stamp a learnable trigger on every input image.

    Args:
        method: ``"neural-cleanse"`` (tanh space, one-channel mask) or ``"plain"``.
        epsilon: keeps ``arctanh`` finite when mapping values in [0, 1] into tanh space.
        seed: seed of the random start (neural-cleanse only).

    Example:
        >>> trigger = Trigger("plain"); trigger.build((None, 32, 32, 3))
        >>> trigger(np.zeros((1, 32, 32, 3))).shape
        TensorShape([1, 32, 32, 3])
    """

    def __init__(self, method: str = "neural-cleanse", epsilon: float = 1e-7, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if method not in MASK_METHODS:
            raise ValueError(f"method must be one of {MASK_METHODS}, not {method!r}")
        self.method = method
        self.epsilon = float(epsilon)
        self.seed = int(seed)

    def build(self, input_shape):
        height, width, channels = (int(d) for d in input_shape[1:])
        mask_channels = channels if self.method == "plain" else 1
        self.mask_weight = self.add_weight(
            name="mask", shape=(height, width, mask_channels), initializer="zeros", trainable=True
        )
        self.pattern_weight = self.add_weight(
            name="pattern", shape=(height, width, channels), initializer="zeros", trainable=True
        )
        self.reset(self.seed)

    def reset(self, seed: int) -> None:
        """Start afresh: zeros for ``plain``, a random mask and pattern for ``neural-cleanse``.

        Assigning (rather than building a new layer) keeps a compiled training step valid, so
        one trace serves every target class.
        """
        if self.method == "plain":
            self.mask_weight.assign(np.zeros(self.mask_weight.shape, np.float32))
            self.pattern_weight.assign(np.zeros(self.pattern_weight.shape, np.float32))
            return
        rng = np.random.default_rng(seed)
        self.mask_weight.assign(self._to_tanh_space(rng.random(self.mask_weight.shape)))
        self.pattern_weight.assign(self._to_tanh_space(rng.random(self.pattern_weight.shape)))

    def _to_tanh_space(self, values: np.ndarray) -> np.ndarray:
        return np.arctanh((values - 0.5) * (2 - self.epsilon)).astype(np.float32)

    def _from_tanh_space(self, raw):
        return ops.tanh(raw) / (2 - self.epsilon) + 0.5

    def mask(self):
        """The mask as applied, ``(H, W, 1)`` or ``(H, W, C)``; in [0, 1] for neural-cleanse."""
        if self.method == "plain":
            return self.mask_weight
        return self._from_tanh_space(self.mask_weight)

    def pattern(self):
        """The pattern as applied, ``(H, W, C)``, in unit pixels for neural-cleanse."""
        if self.method == "plain":
            return self.pattern_weight
        return self._from_tanh_space(self.pattern_weight)

    def mask_l1(self):
        """The size of the mask: its L1 norm over one channel (a C-channel mask's sum / C)."""
        mask = self.mask()
        return ops.sum(ops.abs(mask)) / mask.shape[-1]

    def call(self, inputs):
        mask = self.mask()
        return inputs * (1 - mask) + mask * self.pattern()

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "method": self.method, "epsilon": self.epsilon, "seed": self.seed}
