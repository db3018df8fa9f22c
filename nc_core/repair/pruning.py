"""Pruning: silence the hidden units the reversed triggers excite, until the triggers stop working.

The paper's second mitigation. Units of the last hidden layer are ranked by how much more a
stamped image excites them than a clean one; they are zeroed (kernel column and bias) a few at a
time until the triggers' attack success on the fine-tune data falls to the target, or the share
allowed is spent.

On the MNIST sample, 18 of the 64 units of its hidden Dense layer go, and the reversed trigger's
attack success on held-out digits falls from 0.99 to 0.04:

    >>> from nc_core.repair.evaluation import split_holdout
    >>> from nc_core.repair.triggers import triggers_to_remove
    >>> from nc_core.repair.unlearning import weights_copy
    >>> tune, held_out = split_holdout(data.y, 0.3)
    >>> triggers = triggers_to_remove(report)
    >>> pruned_model = weights_copy(model)  # prune works in place
    >>> pruned = prune(pruned_model, data.subset(tune), triggers, RepairConfig(method="pruning"))
    >>> len(pruned), attack_success(pruned_model, data.subset(held_out), triggers[0])
    (18, 0.04...)
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from nc_core.errors import InvalidParameterError, RunCancelled
from nc_core.loading.data import Dataset
from nc_core.loading.models import predict
from nc_core.optimise.masks import stamp
from nc_core.optimise.progress import CancelToken
from nc_core.repair.config import RepairConfig
from nc_core.repair.evaluation import attack_success
from nc_core.repair.triggers import RepairTrigger

PRUNABLE = (keras.layers.Dense, keras.layers.Conv2D)


def prunable_layer(model: keras.Model) -> keras.layers.Layer:
    """The last Dense or Conv2D layer before the output layer (the paper prunes a late layer)."""
    candidates = [layer for layer in model.layers if isinstance(layer, PRUNABLE)]
    if len(candidates) < 2:
        raise InvalidParameterError(
            "Pruning needs a hidden Dense or Conv2D layer before the output layer; "
            "this model has none at its top level. Use unlearning instead."
        )
    return candidates[-2]


def unit_excitation(
    model: keras.Model, layer: keras.layers.Layer, data: Dataset, triggers: list[RepairTrigger]
) -> np.ndarray:
    """Per unit: the largest rise of its mean activation, stamped over clean, among the triggers."""
    probe = keras.Model(model.inputs[0], layer.output)

    def mean_activation(x: np.ndarray) -> np.ndarray:
        out = predict(probe, data.pixel_range.from_unit(x))
        return out.reshape(len(out), -1, out.shape[-1]).mean(axis=(0, 1))

    clean = mean_activation(data.x)
    rises = [mean_activation(stamp(data.x[data.y != t.target], t.mask, t.pattern)) - clean for t in triggers]
    return np.max(rises, axis=0)


def prune(
    model: keras.Model,
    data: Dataset,
    triggers: list[RepairTrigger],
    config: RepairConfig,
    on_step: Callable[[float], None] | None = None,
    cancel: CancelToken | None = None,
) -> list[int]:
    """Zero the most excited units of :func:`prunable_layer`, in place; returns their indices."""
    layer = prunable_layer(model)
    weights = layer.get_weights()
    units = weights[0].shape[-1]
    order = [int(u) for u in np.argsort(-unit_excitation(model, layer, data, triggers)) if weights[0][..., u].any()]
    step, limit = max(1, round(config.prune_step * units)), int(config.prune_max_share * units)
    pruned: list[int] = []
    while order and len(pruned) + step <= max(limit, step):
        if cancel is not None and cancel.cancelled:
            raise RunCancelled("The repair was cancelled.")
        batch, order = order[:step], order[step:]
        for array in weights[:2]:  # the kernel's output columns and the bias
            array[..., batch] = 0.0
        layer.set_weights(weights)
        pruned.extend(batch)
        if on_step is not None:
            on_step(min(1.0, len(pruned) / max(limit, 1)))
        if max(attack_success(model, data, t) for t in triggers) <= config.target_asr:
            break
    return pruned
