"""The sample models' architecture: a small Sequential CNN of built-in layers on raw 0..255 pixels."""

from __future__ import annotations

import keras

from .sample_set import SampleSet


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, s: SampleSet) -> keras.Model:
    """A small Sequential CNN on raw 0..255 pixels.

    ``Rescaling(1/255)`` comes first so the model takes the shipped uint8 pixels as floats, as
    a user's own model would. Small on purpose: the scanner runs one optimisation per class on
    a 2-core CPU, so a forward/backward pass must be cheap. Built-in layers only (``safe_mode``).
    """
    layers: list = [keras.Input(shape=input_shape, name="pixels"), keras.layers.Rescaling(1.0 / 255.0, name="rescale")]
    for i, filters in enumerate(s.conv_filters, start=1):
        layers += [
            keras.layers.Conv2D(filters, 3, activation="relu", padding="same", name=f"conv{i}"),
            keras.layers.MaxPooling2D(2, name=f"pool{i}"),
        ]
    layers += [keras.layers.Flatten(name="flatten"), keras.layers.Dense(s.dense_units, activation="relu", name="dense")]
    if s.dropout:
        layers.append(keras.layers.Dropout(s.dropout, name="dropout"))
    layers.append(keras.layers.Dense(num_classes, activation="softmax", name="probs"))
    return keras.Sequential(layers, name=name)
