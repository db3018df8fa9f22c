"""Honest before/after figures: a held-out split, clean accuracy and each trigger's attack success.

>>> from nc_core.repair.triggers import trigger_from_card, triggers_to_remove
>>> tune, held_out = split_holdout(data.y, 0.3, seed=0)
>>> known = trigger_from_card(card, (28, 28, 1))  # the real trigger, from the model card
>>> measure(model, data.subset(held_out), triggers_to_remove(report), known)
Figures(clean_accuracy=0.976..., reversed_asr={7: 0.992...}, known_asr=1.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import keras
import numpy as np

from nc_core.errors import InvalidDataError
from nc_core.loading.data import Dataset
from nc_core.loading.models import predict
from nc_core.optimise.masks import stamp
from nc_core.repair.config import MIN_SAMPLES_PER_CLASS
from nc_core.repair.triggers import RepairTrigger


@dataclass
class Figures:
    """What a model does on held-out data: clean accuracy, the attack success of each reversed
    trigger (by target class) and of the real trigger when it is known (``None`` otherwise)."""

    clean_accuracy: float
    reversed_asr: dict[int, float] = field(default_factory=dict)
    known_asr: float | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "reversed_asr": {str(k): v for k, v in self.reversed_asr.items()}}

    @classmethod
    def from_dict(cls, payload: dict) -> Figures:
        return cls(
            float(payload["clean_accuracy"]),
            {int(k): float(v) for k, v in payload["reversed_asr"].items()},
            None if payload.get("known_asr") is None else float(payload["known_asr"]),
        )


def split_holdout(y: np.ndarray, share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices to fine-tune on and to hold out, ``share`` of every class held out (at least one).

    Refuses unlabelled data and classes too small to split: the figures would mean nothing.
    """
    y = np.asarray(y)
    if (y < 0).any():
        raise InvalidDataError("A repair needs labelled data: some samples have no label.")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise InvalidDataError("A repair needs labelled samples of at least 2 classes.")
    small = classes[counts < MIN_SAMPLES_PER_CLASS]
    if small.size:
        raise InvalidDataError(
            f"Class {int(small[0])} has {int(counts[classes == small[0]][0])} sample(s); a repair needs at least "
            f"{MIN_SAMPLES_PER_CLASS} per class (some to fine-tune on, one held out to measure)."
        )
    rng = np.random.default_rng(seed)
    held_out = []
    for label, count in zip(classes, counts):
        members = rng.permutation(np.flatnonzero(y == label))
        held_out.extend(members[: max(1, int(round(share * count)))].tolist())
    held_out = np.sort(np.asarray(held_out, dtype=np.int64))
    return np.setdiff1d(np.arange(len(y)), held_out), held_out


def measure(
    model: keras.Model, data: Dataset, triggers: list[RepairTrigger], known: RepairTrigger | None = None
) -> Figures:
    """Clean accuracy and attack success (share of other classes' samples sent to the target)."""
    inputs = data.model_inputs()
    accuracy = float(np.mean(predict(model, inputs).argmax(axis=1) == data.y))
    return Figures(
        accuracy,
        {t.target: attack_success(model, data, t) for t in triggers},
        attack_success(model, data, known) if known is not None else None,
    )


def attack_success(model: keras.Model, data: Dataset, trigger: RepairTrigger) -> float:
    others = data.y != trigger.target
    if not others.any():
        return float("nan")
    stamped = data.pixel_range.from_unit(stamp(data.x[others], trigger.mask, trigger.pattern))
    return float(np.mean(predict(model, stamped).argmax(axis=1) == trigger.target))
