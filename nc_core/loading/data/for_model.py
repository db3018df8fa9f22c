"""Data for a given model: any kind of data set loaded at the model's image size, checked to fit it,
and the pixel range the model expects when the data cannot tell.

    >>> ds = load_data("sample_models/mnist_data.npz", (28, 28, 1)); ds.x.shape[1:]
    (28, 28, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from nc_core.errors import InvalidDataError, InvalidParameterError
from nc_core.loading.data.class_folders import load_image_folder, load_image_zip
from nc_core.loading.data.dataset import Dataset, stratified_indices
from nc_core.loading.data.npz import load_npz
from nc_core.loading.pixels import PixelRange

PICK_RANGE_SAMPLES = 256


def load_data(
    path: str | Path,
    input_shape: tuple[int, int, int],
    pixel_range: PixelRange | None = None,
    max_samples: int | None = None,
    num_classes: int | None = None,
) -> Dataset:
    """Load an npz, a zip of class folders or a folder of class folders, and check it fits the model.

    Images are resized to the model's input; ``pixel_range`` (if given) is the model's range.

    A zip of pets for a model that takes 64x64 RGB images in [-1, 1] (files written in ``out``):

    >>> import shutil
    >>> from PIL import Image
    >>> for name, colour in [("cat", "orange"), ("dog", "brown")]:
    ...     (out / "pets" / name).mkdir(parents=True, exist_ok=True)
    ...     Image.new("RGB", (80, 60), colour).save(out / "pets" / name / "1.png")
    >>> pets_zip = shutil.make_archive(out / "pets", "zip", out, "pets")
    >>> ds = load_data(pets_zip, (64, 64, 3), PixelRange.parse("-1-1"))
    >>> ds.x.shape, ds.pixel_range.label, float(ds.model_inputs().min())
    ((2, 64, 64, 3), '-1-1', -1.0)
    """
    path = Path(path)
    height, width, channels = input_shape
    if path.is_dir():
        ds = load_image_folder(path, (height, width), channels, max_samples)
    elif path.suffix.lower() == ".npz":
        ds = load_npz(path, pixel_range, max_samples)
    elif path.suffix.lower() == ".zip":
        ds = load_image_zip(path, (height, width), channels, max_samples)
    elif not path.exists():
        raise InvalidDataError(f"The data {str(path)!r} does not exist.")
    else:
        raise InvalidDataError(
            f"{path.name!r} is not data the scanner reads: use an .npz file, a .zip of class folders, or a folder."
        )
    if pixel_range is not None and not ds.range_from_data:
        ds = ds.with_pixel_range(pixel_range)
    check_fits(ds, input_shape, num_classes)
    return ds


def check_fits(ds: Dataset, input_shape: tuple[int, int, int], num_classes: int | None = None) -> None:
    """Refuse data whose image shape or labels the model cannot take.

    ``data`` holds 28x28 grey digits labelled 0 to 9:

    >>> check_fits(data, (32, 32, 3))
    Traceback (most recent call last):
    nc_core.errors.InvalidDataError: The data holds 28x28x1 images; the model takes 32x32x3.
    >>> check_fits(data, (28, 28, 1), num_classes=5)
    Traceback (most recent call last):
    nc_core.errors.InvalidDataError: The data has the label 9 but the model knows 5 classes (0 to 4).
    """
    shape = tuple(int(s) for s in ds.x.shape[1:])
    if shape != tuple(input_shape):
        raise InvalidDataError(f"The data holds {_dims(shape)} images; the model takes {_dims(input_shape)}.")
    known = ds.y[ds.y >= 0]
    if num_classes is not None and len(known) and int(known.max()) >= num_classes:
        raise InvalidDataError(
            f"The data has the label {int(known.max())} but the model knows {num_classes} classes "
            f"(0 to {num_classes - 1})."
        )


def _dims(shape: Iterable[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def pick_pixel_range(
    predict_fn: Callable[[np.ndarray], np.ndarray],
    ds: Dataset,
    candidates: Sequence[str | PixelRange] = ("0-1", "0-255", "-1-1"),
) -> tuple[PixelRange, dict[str, float]]:
    """Guess the range a model expects: the candidate under which it classifies the images best.

    Scores each candidate by accuracy on at most ``PICK_RANGE_SAMPLES`` labelled samples; images
    without labels are scored by the model's mean confidence instead (a model fed the wrong
    range is rarely sure of anything). Ties go to the earlier candidate.

    >>> from nc_core.loading.models import predict
    >>> best, scores = pick_pixel_range(lambda x: predict(classifier, x), data)
    >>> best.label, scores
    ('0-255', {'0-1': 0.15..., '0-255': 0.98..., '-1-1': 0.10...})
    """
    if not candidates:
        raise InvalidParameterError("Give at least one pixel range to try.")
    if len(ds) == 0:
        raise InvalidDataError("Guessing the pixel range needs at least one image.")
    labelled = np.flatnonzero(ds.y >= 0)
    if len(labelled):
        pick = labelled[stratified_indices(ds.y[labelled], PICK_RANGE_SAMPLES)]
    else:
        pick = np.arange(min(len(ds), PICK_RANGE_SAMPLES))
    x, y = ds.x[pick], ds.y[pick]
    best, scores = None, {}
    for candidate in candidates:
        candidate_range = PixelRange.parse(candidate) if isinstance(candidate, str) else candidate
        probs = np.asarray(predict_fn(candidate_range.from_unit(x)))
        hits = probs.argmax(axis=1) == y if len(labelled) else probs.max(axis=1)
        scores[candidate_range.label] = float(np.mean(hits))
        if best is None or scores[candidate_range.label] > scores[best.label]:
            best = candidate_range
    return best, scores
