"""Batches sized from the model's layer outputs (``nc_core.loading.models.footprint``)."""

from __future__ import annotations

import keras
import numpy as np

from nc_core.detection.margin import MAX_BATCH_IMAGES, _batch_images
from nc_core.loading.models import predict
from nc_core.loading.models.footprint import (
    BYTES_PER_VALUE,
    GRADIENT_FACTOR,
    INFERENCE_BUDGET_BYTES,
    activation_bytes,
    images_within,
)
from nc_core.loading.models.prediction import MAX_PREDICT_BATCH


def small_cnn(side: int, filters: int) -> keras.Model:
    inputs = keras.Input((side, side, 3))
    x = keras.layers.Conv2D(filters, 3, padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))


def test_activation_bytes_sums_every_layer_output():
    model = small_cnn(8, 5)
    values = 8 * 8 * 3 + 8 * 8 * 5 + 5 + 4  # input, convolution, pooling, dense
    assert activation_bytes(model) == values * BYTES_PER_VALUE


def test_activation_bytes_counts_nested_models():
    inner = small_cnn(8, 5)
    outer = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255), inner])
    assert activation_bytes(outer) > activation_bytes(inner) >= (8 * 8 * 5) * BYTES_PER_VALUE


def test_images_within_fits_the_budget_between_one_and_most():
    model = small_cnn(64, 64)
    per_image = activation_bytes(model)
    assert images_within(model, 10 * per_image, most=256) == 10
    assert images_within(model, 10 * per_image, most=256, factor=GRADIENT_FACTOR) == 10 // GRADIENT_FACTOR
    assert images_within(model, per_image // 2, most=256) == 1
    assert images_within(model, 10**12, most=256) == 256


def test_predict_batches_a_large_model_in_fewer_images_with_the_same_outputs():
    model = small_cnn(96, 256)  # 9.4 MB of layer outputs per image: 53 images per 512 MiB
    x = np.random.default_rng(0).uniform(0, 1, (120, 96, 96, 3)).astype(np.float32)
    sizes: list[int] = []

    def forward(batch):
        sizes.append(len(batch))
        return model(batch, training=False)

    out = predict(model, x, forward=forward)
    expected = images_within(model, INFERENCE_BUDGET_BYTES, most=MAX_PREDICT_BATCH)
    assert expected < MAX_PREDICT_BATCH and max(sizes) == expected and sum(sizes) == len(x)
    np.testing.assert_allclose(out, predict(model, x, batch_size=7), rtol=1e-5, atol=1e-6)


def test_margin_batches_shrink_for_a_large_model_only():
    assert _batch_images(small_cnn(8, 5)) == MAX_BATCH_IMAGES
    assert 1 <= _batch_images(small_cnn(96, 256)) < MAX_BATCH_IMAGES
