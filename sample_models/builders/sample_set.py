"""One set of samples: its data, its trigger and target, and how its twin models are built and trained."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .poisoning import Trigger


@dataclass
class SampleSet:
    """Everything a set needs to be trained and described: data, trigger, and training knobs."""

    name: str
    dataset: str
    class_names: list[str]
    x_train: np.ndarray  # uint8 (N, H, W, C)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray  # uint8, held out: never trained on, shipped in <name>_data.npz
    y_test: np.ndarray
    trigger: Trigger
    target: int
    conv_filters: tuple[int, ...]
    dense_units: int
    dropout: float
    epochs: int
    batch_size: int
    min_clean_accuracy: float
    cutout: int = 0  # side of the square erased from each training image each epoch (0: none)
    extra_card: dict = field(default_factory=dict)
