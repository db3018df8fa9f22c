"""Tiny Keras models built in the test (8x8 grey images), good and hostile, for the loaders."""

from __future__ import annotations

import os

import keras

SHAPE = (8, 8, 1)


def image_model(units: int = 3, activation: str | None = "softmax", name: str = "tiny") -> keras.Model:
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(hidden), name=name)


def lambda_model(marker: str) -> keras.Model:
    """A model whose Lambda writes ``marker`` when it runs; running it on load would be a breach."""
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Lambda(lambda x: (open(marker, "w").close(), x)[1])(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, outputs)
    os.remove(marker)  # building the graph ran it once
    return model


class Doubler(keras.layers.Layer):
    """A custom layer the loading process does not know (not registered)."""

    def call(self, x):
        return x * 2
