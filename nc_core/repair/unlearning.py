"""Unlearning: fine-tune on clean images, some stamped with the reversed triggers, true labels kept.

The model learns that the trigger means nothing: the stamped images keep their own class, so the
shortcut to the target class is trained away while the clean images hold the accuracy. One round
on the MNIST sample takes the reversed trigger's attack success on held-out digits from 0.99 to
0.01:

    >>> from nc_core.repair.evaluation import attack_success, split_holdout
    >>> from nc_core.repair.triggers import triggers_to_remove
    >>> tune, held_out = split_holdout(data.y, 0.3)
    >>> triggers = triggers_to_remove(report)
    >>> unlearned = trainable_copy(model)  # the model itself stays as it is
    >>> rng = np.random.default_rng(0)
    >>> unlearn(unlearned, data.subset(tune), triggers, RepairConfig(), from_logits=False, rng=rng)
    >>> attack_success(unlearned, data.subset(held_out), triggers[0])
    0.01...
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from nc_core.errors import RunCancelled
from nc_core.loading.data import Dataset
from nc_core.optimise.masks import stamp
from nc_core.optimise.progress import CancelToken
from nc_core.repair.config import RepairConfig
from nc_core.repair.triggers import RepairTrigger, grown


def weights_copy(model: keras.Model) -> keras.Model:
    """A new, uncompiled model with the same architecture and weights, every layer trainable
    (as a saved model is): what the repair saves, measures, scans and reverses on."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.trainable = True
    return copy


def trainable_copy(model: keras.Model) -> keras.Model:
    """A copy with the same weights whose layers train, BatchNorm excepted (kept in inference
    mode: a few hundred samples would only spoil statistics learned on the whole training set)."""
    copy = weights_copy(model)
    for layer in copy._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return copy


def stamped_epoch(x: np.ndarray, triggers: list[RepairTrigger], share: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` (unit pixels) with ``share`` of the images stamped, each with one of the triggers."""
    out = x.copy()
    chosen = np.flatnonzero(rng.random(len(x)) < share)
    which = rng.integers(0, len(triggers), len(chosen))
    for k, trigger in enumerate(triggers):
        rows = chosen[which == k]
        out[rows] = stamp(x[rows], trigger.mask, trigger.pattern)
    return out


def unlearn(
    model: keras.Model,
    data: Dataset,
    triggers: list[RepairTrigger],
    config: RepairConfig,
    from_logits: bool,
    rng: np.random.Generator,
    on_epoch: Callable[[int], None] | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """One round of ``config.epochs`` passes over ``data``, in place; a fresh stamping each pass,
    half of the stamped images with the triggers as found, half with them grown
    (:func:`~nc_core.repair.triggers.grown`) when ``config.grow_pixels`` is above 0."""
    if config.grow_pixels:
        triggers = [*triggers, *(grown(t, config.grow_pixels) for t in triggers)]
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
    )
    for epoch in range(config.epochs):
        if cancel is not None and cancel.cancelled:
            raise RunCancelled("The repair was cancelled.")
        x = data.pixel_range.from_unit(stamped_epoch(data.x, triggers, config.stamp_share, rng))
        model.fit(x, data.y, batch_size=config.batch_size, epochs=1, shuffle=True, verbose=0)
        if on_epoch is not None:
            on_epoch(epoch + 1)
