"""A data set of clean images in the unit range, and the checks every loader applies to one.

Neural Cleanse works in the unit pixel range, so every loader returns a :class:`Dataset`: pixels
in [0, 1] plus the :class:`PixelRange` the *model* expects. A cut to fewer samples keeps every
class's share (:func:`stratified_indices`), so small classes survive it.

    >>> stratified_indices(np.array([0, 0, 0, 1]), 2).tolist()  # class 1's only sample stays
    [2, 3]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nc_core.errors import InvalidDataError, InvalidParameterError
from nc_core.loading import limits
from nc_core.loading.pixels import PixelRange

SEED = 0


@dataclass
class Dataset:
    """Images in the unit range with labels, and the pixel range the model expects.

    ``raw_inputs`` keeps an npz's arrays as stored, so changing the range never compounds a clip.

    >>> from nc_core.loading.data import load_npz
    >>> ds = load_npz("sample_models/mnist_data.npz")  # digits stored as the model takes them, 0-255
    >>> len(ds), ds.pixel_range.label, float(ds.x.max()), float(ds.model_inputs().max())
    (1000, '0-255', 1.0, 255.0)
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list[str] | None
    source: str
    pixel_range: PixelRange
    range_from_data: bool
    raw_inputs: np.ndarray | None = field(default=None, repr=False, compare=False)
    skipped: int = 0  # files that were not readable images

    def model_inputs(self) -> np.ndarray:
        """The images as the model takes them.

        >>> from nc_core.loading.data import load_npz
        >>> ds = load_npz("sample_models/mnist_data.npz")
        >>> ds.model_inputs().dtype, float(ds.model_inputs().max())
        (dtype('float32'), 255.0)
        """
        return self.pixel_range.from_unit(self.x)

    def with_pixel_range(self, new: PixelRange) -> Dataset:
        """The same data read with another model range.

        When the file stored model inputs (npz) the unit pixels are re-derived from them;
        for images only the range the model expects changes.

        >>> from nc_core.loading.data import load_npz
        >>> ds = load_npz("sample_models/mnist_data.npz")
        >>> as_unit = ds.with_pixel_range(PixelRange.parse("0-1"))  # read 0-255 digits as 0-1: clipped
        >>> as_unit.pixel_range.label, float(as_unit.x.mean()) > float(ds.x.mean())
        ('0-1', True)
        >>> back = as_unit.with_pixel_range(PixelRange.parse("0-255"))  # from the stored values again
        >>> np.array_equal(back.x, ds.x)
        True
        """
        if not self.range_from_data:
            return dataclasses.replace(self, pixel_range=new)
        stored = self.raw_inputs if self.raw_inputs is not None else self.model_inputs()
        return dataclasses.replace(self, x=to_unit(stored, new), pixel_range=new)

    def subset(self, idx: Sequence[int] | np.ndarray) -> Dataset:
        """The samples at ``idx``, everything else kept.

        >>> from nc_core.loading.data import load_npz
        >>> ds = load_npz("sample_models/mnist_data.npz")
        >>> len(ds.subset([0, 2])), ds.subset([0, 2]).y.tolist() == ds.y[[0, 2]].tolist()
        (2, True)
        """
        idx = np.asarray(idx, dtype=np.int64)
        raw = self.raw_inputs[idx] if self.raw_inputs is not None else None
        return dataclasses.replace(self, x=self.x[idx], y=self.y[idx], raw_inputs=raw)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def num_classes_seen(self) -> int:
        """How many distinct (known) labels the data holds."""
        return len(self.class_counts())

    def class_counts(self) -> dict[int, int]:
        """Samples per known label, in label order.

        >>> from nc_core.loading.data import load_npz
        >>> load_npz("sample_models/mnist_data.npz", max_samples=50).class_counts()
        {0: 5, 1: 5, 2: 5, 3: 5, 4: 5, 5: 5, 6: 5, 7: 5, 8: 5, 9: 5}
        """
        labels, counts = np.unique(self.y[self.y >= 0], return_counts=True)
        return {int(label): int(count) for label, count in zip(labels, counts)}


def to_unit(stored: np.ndarray, pixel_range: PixelRange) -> np.ndarray:
    """Model inputs -> unit pixels, clipped to [0, 1], float32."""
    unit = pixel_range.to_unit(stored)
    if not np.all(np.isfinite(unit)):
        raise InvalidDataError(f"The data cannot be read in the pixel range {pixel_range.label}.")
    return np.clip(unit, 0.0, 1.0).astype(np.float32, copy=False)


def stratified_indices(y: np.ndarray, n: int, seed: int = SEED) -> np.ndarray:
    """Sorted indices of ``n`` samples, each class keeping its share (fixed seed, so repeatable).

    Every class first gets one sample (when ``n`` allows), so small classes survive a cut.

    >>> len(stratified_indices(np.array([0, 0, 0, 1]), 2))
    2
    """
    y = np.asarray(y)
    if n >= len(y):
        return np.arange(len(y))
    order = np.random.default_rng(seed).permutation(len(y))
    _, inverse, counts = np.unique(y[order], return_inverse=True, return_counts=True)
    by_class = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(y), dtype=np.int64)
    rank[by_class] = np.arange(len(y)) - starts[inverse[by_class]]
    key = np.where(rank == 0, -1.0, (rank + 0.5) / counts[inverse])
    return np.sort(order[np.argsort(key, kind="stable")[:n]])


def check_max_samples(max_samples: int) -> int:
    """The sample limit a user gave, refused below 1."""
    if int(max_samples) < 1:
        raise InvalidParameterError(f"The sample limit must be at least 1, not {max_samples}.")
    return int(max_samples)


def check_data_values(values: int, source: str) -> None:
    """Refuse a data set of more pixel values than ``MAX_DATA_VALUES`` (checked before loading).

    >>> check_data_values(10_000 * 28 * 28, "mnist.npz")
    """
    if values > limits.MAX_DATA_VALUES:
        raise InvalidDataError(
            f"{source!r} holds {values:,} pixel values; the scanner loads at most {limits.MAX_DATA_VALUES:,} "
            "(NC_MAX_DATA_VALUES): keep fewer samples (a few hundred per class are plenty)."
        )
