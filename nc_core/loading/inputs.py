"""A model and its data, loaded, checked against each other, and ready to scan.

The CLI and the dashboard both start here, so they agree on what was understood: the input
shape, the classes, whether outputs are logits, and the pixel range the model expects (taken
from the user, read from an npz's values, or, for plain images, the range under which the
model classifies them best).

    >>> inputs = load_inputs("sample_models/signs_backdoored.keras", "sample_models/signs_data.npz")
    >>> inputs.data.pixel_range.label, inputs.info.num_classes
    ('0-255', 43)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras

from nc_core.loading.data import Dataset, check_fits, load_data, pick_pixel_range
from nc_core.loading.models import ModelInfo, as_classifier, clean_accuracy, inspect_model, load_model, predict
from nc_core.loading.pixels import PixelRange

PROBE_SAMPLES = 64


@dataclass
class ScanInputs:
    """What a scan needs, plus what the user should see about it.

    ``classifier`` outputs probabilities (a softmax is added to a logits model);
    ``range_accuracies`` holds the score under each candidate range when the range was guessed
    from the model (accuracy, or mean confidence for unlabelled images); ``clean_accuracy`` is the
    model's accuracy on the labelled samples (NaN when none has a label).
    """

    model_name: str
    classifier: keras.Model
    info: ModelInfo
    data: Dataset
    clean_accuracy: float
    range_accuracies: dict[str, float] = field(default_factory=dict)

    def with_pixel_range(self, pixel_range: PixelRange) -> ScanInputs:
        """The same model and data read with another pixel range (accuracy recomputed)."""
        data = self.data.with_pixel_range(pixel_range)
        accuracy = _accuracy(self.classifier, data)
        return ScanInputs(self.model_name, self.classifier, self.info, data, accuracy, self.range_accuracies)


def prepare(
    model: keras.Model,
    data: Dataset,
    model_name: str,
    pixel_range: PixelRange | None = None,
) -> ScanInputs:
    """Check ``data`` against an already loaded ``model`` and settle the pixel range."""
    info = inspect_model(model)
    check_fits(data, info.input_shape, info.num_classes)
    range_accuracies: dict[str, float] = {}
    if pixel_range is not None:
        data = data.with_pixel_range(pixel_range)
    elif not data.range_from_data:
        best, range_accuracies = pick_pixel_range(lambda v: predict(model, v), data)
        data = data.with_pixel_range(best)
    info = inspect_model(model, data.model_inputs()[:PROBE_SAMPLES])
    classifier = as_classifier(model, info)
    return ScanInputs(model_name, classifier, info, data, _accuracy(classifier, data), range_accuracies)


def _accuracy(classifier: keras.Model, data: Dataset) -> float:
    if not (data.y >= 0).any():
        return float("nan")
    return clean_accuracy(classifier, data.model_inputs(), data.y)


def load_inputs(
    model_path: str | Path,
    data_path: str | Path,
    pixel_range: str | PixelRange | None = None,
    max_samples: int | None = None,
) -> ScanInputs:
    """Load a model file and a data file (npz, zip or folder) and :func:`prepare` them."""
    if isinstance(pixel_range, str):
        pixel_range = PixelRange.parse(pixel_range)
    model = load_model(model_path)
    info = inspect_model(model)
    data = load_data(data_path, info.input_shape, pixel_range, max_samples, info.num_classes)
    return prepare(model, data, Path(model_path).name, pixel_range)
