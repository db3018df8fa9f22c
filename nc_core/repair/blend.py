"""A whole-image trigger for a class only the max-margin test flags, for unlearning.

The max-margin test (:mod:`nc_core.detection.margin`) says *that* the model answers a class
abnormally hard, not with what trigger; and when Neural Cleanse did not flag that class, its
small-mask trigger is not what the backdoor answers to (a faint blend, a sinusoid, a filter).
Unlearning needs images that carry the backdoor, so this recovers the blend form of the
trigger: one opacity ``a`` for every pixel and a free pattern ``p``, ``x * (1 - a) + a * p``,
the smallest ``a`` on a short ladder at which some pattern sends most clean images of the other
classes to the class. It is a :class:`~nc_core.repair.triggers.RepairTrigger` like any other (its mask
is ``a`` everywhere), so unlearning stamps it as it stamps a reversed patch.

    >>> from nc_core.loading.inputs import load_inputs
    >>> filtered = load_inputs("tests/models/mnist-filter-cnn.keras", "tests/models/mnist_0-255.npz")
    >>> trigger = reverse_blend(filtered.classifier, filtered.data, target=4)
    >>> trigger.source
    'blend at opacity 0.3 (for the max-margin finding)'
"""

from __future__ import annotations

import numpy as np

from nc_core.errors import RunCancelled
from nc_core.repair.triggers import RepairTrigger

#: The opacities tried, smallest first: a blend backdoor's own lies at 0.1-0.3 in the literature.
OPACITIES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
ASR_GOAL = 0.9
BATCH = 64


def reverse_blend(
    classifier,
    data,
    target: int,
    steps: int = 150,
    seed: int = 0,
    cancel=None,
    opacities: tuple[float, ...] = OPACITIES,
) -> RepairTrigger:
    """The smallest-opacity blend trigger that sends ``ASR_GOAL`` of other classes' images to
    ``target`` (the largest tried when none does). ``classifier`` outputs probabilities."""
    from keras import ops

    from nc_core import backend
    from nc_core.optimise.adam import adam_update

    others = np.flatnonzero(data.y != target)
    x = np.asarray(data.x[others] if others.size else data.x, np.float32)
    rng = np.random.default_rng(seed)
    scale = ops.convert_to_tensor(np.float32(data.pixel_range.scale))
    offset = ops.convert_to_tensor(np.float32(data.pixel_range.offset))
    logits = ops.convert_to_tensor(rng.normal(0, 0.1, x.shape[1:]).astype(np.float32))
    state = [logits, ops.zeros_like(logits), ops.zeros_like(logits), ops.convert_to_tensor(np.float32(0))]
    weights = backend.model_weights(classifier)
    batch = min(BATCH, len(x))
    labels = ops.full((batch,), target, "int32")

    def blended(images, logits, alpha):
        return (images * (1 - alpha) + alpha * ops.sigmoid(logits)) * scale + offset

    def loss(params, images, alpha):
        probabilities = ops.cast(backend.classify(classifier, weights, blended(images, params[0], alpha)), "float32")
        return ops.mean(ops.sparse_categorical_crossentropy(labels, probabilities)), None

    grad = backend.value_and_grad(loss)

    @backend.compile_function
    def step(logits, m, v, iteration, images, alpha):
        _, (g,) = grad([logits], images, alpha)
        return (*adam_update(logits, g, m, v, iteration, 0.1), iteration)

    @backend.compile_function
    def hits(logits, images, alpha):
        predicted = ops.argmax(backend.classify(classifier, weights, blended(images, logits, alpha)), axis=1)
        return ops.sum(ops.cast(ops.equal(predicted, target), "float32"))

    found = None
    for opacity in opacities:
        alpha = ops.convert_to_tensor(np.float32(opacity))
        for k in range(steps):
            if cancel is not None and k % 25 == 0 and cancel.cancelled:
                raise RunCancelled()
            images = ops.convert_to_tensor(x[rng.choice(len(x), batch, replace=len(x) < batch)])
            state = step(*state[:3], state[3] + 1.0, images, alpha)
        asr = sum(
            float(backend.to_numpy(hits(state[0], ops.convert_to_tensor(x[i : i + 256]), alpha)))
            for i in range(0, len(x), 256)
        ) / len(x)
        found = RepairTrigger(
            target,
            np.full(x.shape[1:3], opacity, np.float32),
            (1 / (1 + np.exp(-backend.to_numpy(state[0])))).astype(np.float32),
            source=f"blend at opacity {opacity:g} (for the max-margin finding)",
        )
        if asr >= ASR_GOAL:
            break
    return found
