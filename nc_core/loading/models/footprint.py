"""How many images one pass of a model may take at once, so a scan stays within its memory.

A batch costs memory in proportion to the values every layer outputs for one image: a 96x96
MobileNetV2 writes 4.1 M floats (16 MB) per image, so the 256-image batches that suit a small
CNN took 5.2 GiB of RAM for one prediction. Batches are therefore sized from the model, not
fixed: the images whose layer outputs fit a budget, up to a ceiling. A pass with gradients keeps
every output for the backward pass and adds their gradients, so it counts ``GRADIENT_FACTOR``
times the forward values.

    >>> activation_bytes(classifier)  # the MNIST sample: 27 K floats per image
    107176
    >>> images_within(classifier, INFERENCE_BUDGET_BYTES, most=256)
    256
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

#: Memory one batched prediction may fill with layer outputs (a 96x96 MobileNetV2: 32 images).
INFERENCE_BUDGET_BYTES = 512 * 2**20
#: Memory one batch of gradient steps may fill (the max-margin test's images, all at once).
GRADIENT_BUDGET_BYTES = 1024 * 2**20
#: Values a gradient pass holds per forward value: the outputs kept for the backward pass and
#: their gradients (measured on a 96x96 MobileNetV2: below 2, as TensorFlow frees as it goes).
GRADIENT_FACTOR = 2
BYTES_PER_VALUE = 4


def activation_bytes(model: keras.Model) -> int:
    """Bytes of float32 layer outputs one image's forward pass writes, nested models included.

    A layer called more than once (no single output) is counted from its output shape alone when
    Keras can tell it, else skipped: the estimate sizes batches, it does not account memory."""
    values = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        try:
            outputs = layer.output
        except (AttributeError, ValueError):
            continue
        for output in outputs if isinstance(outputs, list | tuple) else [outputs]:
            shape = [d for d in getattr(output, "shape", ())[1:] if d is not None]
            values += int(np.prod(shape)) if shape else 1
    return max(values, 1) * BYTES_PER_VALUE


def images_within(model: keras.Model, budget_bytes: int, most: int, factor: int = 1) -> int:
    """The most images (at least 1, at most ``most``) whose passes fit ``budget_bytes``.

    ``factor`` counts the values a pass keeps per forward value (``GRADIENT_FACTOR`` with
    gradients)."""
    per_image = activation_bytes(model) * factor
    return int(min(most, max(1, budget_bytes // per_image)))
