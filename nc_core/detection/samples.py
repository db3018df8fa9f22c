"""Triggered samples: a few clean inputs of other classes, the same with a recovered trigger, and
what the model predicts for each.

They are the most convincing picture of a backdoor ("a 3 with this corner patch is read as a 7,
99 %"), and the only one that needs the model and data. So they are computed once, when a class
finishes, and stored with the run as small thumbnails with the model's predictions: a finished
run, an exported bundle or a shipped sample scan shows them without loading anything.

    >>> samples = triggered_samples(classifier, data, result)
    >>> samples.caption(0), samples.caption(0, triggered=True)
    ('0 → 0 (100%)', '0 → 7 (100%)')
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nc_core.optimise.masks import stamp

if TYPE_CHECKING:
    from nc_core.loading.data import Dataset
    from nc_core.optimise.results import TriggerResult

#: Samples kept per class: the result view shows 6, the comparison 3.
SAMPLES_KEPT = 6
#: Longest side of a stored thumbnail; larger inputs are shrunk (a 224x224 model's run stays small).
THUMBNAIL_SIDE = 96
_KEYS = ("labels", "clean", "triggered", "predicted", "confidence")


@dataclass
class TriggeredSamples:
    """One class's samples: ``clean`` and ``triggered`` are 8-bit thumbnails ``(n, h, w, c)``;
    ``predicted`` and ``confidence`` hold the model's answer for the clean ones, then the
    triggered ones (``2n`` each)."""

    target: int
    labels: np.ndarray
    clean: np.ndarray
    triggered: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def caption(self, index: int, triggered: bool = False, names: list[str] | None = None) -> str:
        """``'3 → 7 (99%)'``: true class → predicted class (confidence) of sample ``index``."""
        at = index + (len(self) if triggered else 0)
        predicted = int(self.predicted[at])
        name = names[predicted] if names and predicted < len(names) else str(predicted)
        label = str(predicted) if name == str(predicted) else f"{predicted} · {name}"
        return f"{int(self.labels[index])} → {label} ({self.confidence[at]:.0%})"

    def first(self, count: int) -> TriggeredSamples:
        """The first ``count`` samples (the comparison shows fewer than the result view)."""
        n = min(count, len(self))
        return TriggeredSamples(
            self.target,
            self.labels[:n],
            self.clean[:n],
            self.triggered[:n],
            np.concatenate([self.predicted[:n], self.predicted[len(self) : len(self) + n]]),
            np.concatenate([self.confidence[:n], self.confidence[len(self) : len(self) + n]]),
        )

    def to_npz(self) -> bytes:
        """The arrays as an npz file's bytes (no pickle), as the run store keeps them."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{key: getattr(self, key) for key in _KEYS})
        return buffer.getvalue()

    @classmethod
    def from_arrays(cls, target: int, arrays) -> TriggeredSamples:
        """From :meth:`to_npz`'s arrays; raises ``ValueError`` when they do not fit together."""
        if set(getattr(arrays, "files", _KEYS)) != set(_KEYS):
            raise ValueError(f"stored samples hold exactly {', '.join(_KEYS)}")
        samples = cls(int(target), *(np.asarray(arrays[key]) for key in _KEYS))
        samples.check()
        return samples

    def check(self) -> None:
        """Shapes, types and ranges that stored samples must have (they may come from a bundle)."""
        n = len(self.labels)
        if (
            self.clean.dtype != np.uint8
            or self.triggered.dtype != np.uint8
            or self.clean.ndim != 4
            or self.clean.shape != self.triggered.shape
            or self.clean.shape[0] != n
            or max(self.clean.shape[1:3], default=0) > THUMBNAIL_SIDE
            or self.clean.shape[3] not in (1, 3)
        ):
            raise ValueError("the thumbnails do not have the shapes of stored samples")
        if (
            self.labels.dtype.kind not in "iu"
            or self.predicted.dtype.kind not in "iu"
            or self.predicted.shape != (2 * n,)
        ):
            raise ValueError("the labels or predictions are not class indices for every sample")
        if (
            self.confidence.dtype.kind != "f"
            or self.confidence.shape != (2 * n,)
            or not np.all(np.isfinite(self.confidence))
            or np.any((self.confidence < 0) | (self.confidence > 1))
        ):
            raise ValueError("the confidences are not probabilities")


def pick_samples(labels: np.ndarray, target: int, count: int = SAMPLES_KEPT) -> list[int]:
    """Indices of the first sample of each class other than ``target``, in class order, up to ``count``.

    >>> pick_samples(np.array([7, 1, 1, 0, 7]), target=7)
    [3, 1]
    """
    first_of_class: dict[int, int] = {}
    for index, label in enumerate(np.asarray(labels).tolist()):
        if label != target and label not in first_of_class:
            first_of_class[label] = index
    return [first_of_class[k] for k in sorted(first_of_class)][:count]


def triggered_samples(
    classifier, data: Dataset, result: TriggerResult, count: int = SAMPLES_KEPT, forward=None
) -> TriggeredSamples:
    """Stamp ``result``'s trigger on a few clean samples of other classes and ask the model
    (none when the data holds no other class).

    ``classifier`` answers probabilities (:func:`nc_core.loading.models.as_classifier`).
    """
    from nc_core.loading.models import predict  # Keras: loaded only when samples are made

    picks = pick_samples(data.y, result.target, count)
    if not picks:
        empty = np.zeros((0, 1, 1, 1), np.uint8)
        return TriggeredSamples(
            int(result.target), np.zeros(0, np.int64), empty, empty, np.zeros(0, np.int64), np.zeros(0, np.float32)
        )
    clean = np.asarray(data.x[picks], np.float32)
    triggered = stamp(clean, result.mask, result.pattern)
    probabilities = predict(classifier, data.pixel_range.from_unit(np.concatenate([clean, triggered])), forward=forward)
    return TriggeredSamples(
        target=int(result.target),
        labels=np.asarray(data.y[picks], np.int64),
        clean=thumbnails(clean),
        triggered=thumbnails(triggered),
        predicted=probabilities.argmax(axis=1).astype(np.int64),
        confidence=probabilities.max(axis=1).astype(np.float32),
    )


def thumbnails(unit: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """Unit-range images ``(n, H, W, C)`` as 8-bit thumbnails no larger than ``side`` pixels.

    Two-channel inputs keep their first channel (as :func:`nc_core.reports.images.to_image` shows them).
    """
    from PIL import Image

    images = np.round(np.clip(np.asarray(unit, np.float32), 0, 1) * 255).astype(np.uint8)
    if images.shape[-1] not in (1, 3):
        images = images[..., :1]
    height, width = images.shape[1:3]
    if max(height, width) <= side:
        return images
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shrunk = [
        np.asarray(Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).resize(size, Image.BILINEAR))
        for image in images
    ]
    return np.stack(shrunk).reshape(len(images), size[1], size[0], images.shape[-1])
