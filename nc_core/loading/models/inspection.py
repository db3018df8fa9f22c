"""What a loaded model is: an image classifier of one fixed input and one score per class, whose
outputs are probabilities or logits; and the same model with probabilities out.

Neural Cleanse's loss needs probabilities of a fixed-size image input; a model that does not fit
is refused here with a sentence that says why and how to re-save it.

    >>> ModelInfo((32, 32, 3), 10, 1234, True, "cifar_cnn").num_classes
    10
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from nc_core.errors import InvalidDataError, ModelLoadError
from nc_core.loading import limits
from nc_core.loading.models.prediction import predict

# Rows of a sample that decide whether outputs are probabilities.
PROBE_ROWS = 64


@dataclass(frozen=True)
class ModelInfo:
    """What the scanner needs to know about a classifier, shown on the model page.

    >>> ModelInfo((32, 32, 3), 10, 1234, True, "cifar_cnn").num_classes
    10
    """

    input_shape: tuple[int, int, int]
    num_classes: int
    num_params: int
    outputs_probabilities: bool
    name: str


def inspect_model(model: keras.Model, sample_x: np.ndarray | None = None) -> ModelInfo:
    """Check the model is an image classifier and describe it.

    ``sample_x`` (model inputs) decides whether outputs are probabilities; without it the last
    layer's activation does (softmax means probabilities).

    >>> info = inspect_model(model)  # the MNIST sample, its last layer a softmax
    >>> info.input_shape, info.num_classes, info.outputs_probabilities
    ((28, 28, 1), 10, True)
    >>> inspect_model(model, data.model_inputs()[:64]).outputs_probabilities  # its outputs, looked at
    True
    """
    input_shape = _image_input_shape(model)
    num_classes = _num_classes(model)
    if sample_x is not None:
        probabilities = _outputs_look_like_probabilities(model, sample_x, input_shape)
    else:
        probabilities = _ends_in_softmax(model)
    return ModelInfo(
        input_shape=input_shape,
        num_classes=num_classes,
        num_params=int(model.count_params()),
        outputs_probabilities=probabilities,
        name=str(model.name),
    )


def _tensors(model: keras.Model, kind: str) -> list:
    try:
        tensors = getattr(model, kind)
    except (AttributeError, ValueError):
        tensors = None
    if not tensors:
        raise ModelLoadError(f"The model has no defined {kind}: build it with keras.Input(shape=...) before saving.")
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def _image_input_shape(model: keras.Model) -> tuple[int, int, int]:
    inputs = _tensors(model, "inputs")
    if len(inputs) != 1:
        raise ModelLoadError(f"The model takes {len(inputs)} inputs; the scanner needs one image input.")
    shape = tuple(inputs[0].shape)
    dtype = str(getattr(inputs[0], "dtype", "float32"))
    if not dtype.startswith(("float", "bfloat")):
        raise ModelLoadError(
            f"The model's input is {dtype}: no gradient flows through an integer input, so no trigger can be "
            "reverse-engineered (every class would look untriggerable). Re-save the model with a float32 input, "
            "keras.Input(shape, dtype='float32'), and cast or rescale inside it if needed."
        )
    if len(shape) != 4:
        raise ModelLoadError(
            f"The model input has shape {_shape_text(shape)}; the scanner needs images shaped "
            "(batch, height, width, channels)."
        )
    height, width, channels = shape[1:]
    if height is None or width is None or channels is None:
        raise ModelLoadError(
            f"The model accepts images of shape {_shape_text(shape)}; the scanner needs a fixed "
            "height, width and channel count."
        )
    if int(height) * int(width) > limits.MAX_INPUT_PIXELS:
        raise ModelLoadError(
            f"The model takes {height}x{width} images; the scanner handles at most "
            f"{limits.MAX_INPUT_PIXELS:,} pixels an image (NC_MAX_INPUT_PIXELS)."
        )
    if not 1 <= channels <= 4:
        raise ModelLoadError(
            f"The model input has {channels} channels; the scanner needs 1 (grey), 3 (RGB) or 4 (RGBA) "
            "channels last, as in (batch, height, width, channels)."
        )
    return int(height), int(width), int(channels)


def _num_classes(model: keras.Model) -> int:
    outputs = _tensors(model, "outputs")
    if len(outputs) != 1:
        raise ModelLoadError(f"The model has {len(outputs)} outputs; the scanner needs one class-score output.")
    shape = tuple(outputs[0].shape)
    if len(shape) != 2 or shape[1] is None:
        raise ModelLoadError(
            f"The model outputs shape {_shape_text(shape)}; the scanner needs one score per class, "
            "shaped (batch, classes)."
        )
    if shape[1] < 2:
        raise ModelLoadError(
            f"The model outputs {shape[1]} value per input: it looks like a regression or binary model; "
            "the scanner needs one score per class for at least 2 classes."
        )
    if shape[1] > limits.MAX_CLASSES:
        raise ModelLoadError(
            f"The model outputs {shape[1]:,} classes; the scanner handles at most {limits.MAX_CLASSES:,} "
            "(NC_MAX_CLASSES), since every class gets its own trigger."
        )
    return int(shape[1])


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _outputs_look_like_probabilities(model: keras.Model, sample_x: np.ndarray, input_shape: tuple) -> bool:
    sample = np.asarray(sample_x)
    if sample.ndim != 4 or tuple(sample.shape[1:]) != input_shape or len(sample) == 0:
        raise InvalidDataError(
            f"The sample holds shape {sample.shape}; the model takes (N, {', '.join(map(str, input_shape))})."
        )
    probs = predict(model, sample[:PROBE_ROWS])
    if not np.all(np.isfinite(probs)):
        raise ModelLoadError(
            "The model's outputs are NaN or infinite on clean samples (broken or corrupted weights?): "
            "it cannot be analysed."
        )
    in_range = bool(np.all((probs >= -1e-6) & (probs <= 1 + 1e-6)))
    return in_range and bool(np.allclose(probs.sum(axis=1), 1.0, atol=1e-3))


def _ends_in_softmax(model: keras.Model) -> bool:
    """True when the layer producing the output applies softmax (looks into nested models)."""
    history = getattr(model.outputs[0], "_keras_history", None)
    layer = getattr(history, "operation", None) or (model.layers[-1] if model.layers else None)
    if isinstance(layer, keras.Model):
        return _ends_in_softmax(layer)
    if isinstance(layer, keras.layers.Softmax):
        return True
    return getattr(getattr(layer, "activation", None), "__name__", "") == "softmax"


def as_classifier(model: keras.Model, info: ModelInfo) -> keras.Model:
    """The model itself when it outputs probabilities, else the model followed by a softmax.

    Neural Cleanse's loss needs probabilities; a functional wrapper avoids Lambda layers.

    A model whose last layer gives logits gains a softmax:

    >>> inputs = keras.Input((28, 28, 1))
    >>> logits_model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    >>> classifier = as_classifier(logits_model, inspect_model(logits_model))
    >>> classifier.layers[-1].name, round(float(predict(classifier, data.model_inputs()[:1]).sum()), 4)
    ('nc_softmax', 1.0)
    >>> as_classifier(model, inspect_model(model)) is model  # the MNIST sample outputs probabilities
    True
    """
    if info.outputs_probabilities:
        return model
    inputs = keras.Input(shape=info.input_shape, dtype=model.inputs[0].dtype)
    outputs = keras.layers.Softmax(name="nc_softmax")(model(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_probabilities")
