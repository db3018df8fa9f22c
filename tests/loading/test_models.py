"""Loading and checking user models: safe loading, clean errors, classifier checks, predictions."""

from __future__ import annotations

import os
import tempfile
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nc_core.errors import InvalidDataError, InvalidParameterError, ModelLoadError, UnsafeModelError
from nc_core.loading import models
from nc_core.loading.models import ModelInfo, as_classifier, clean_accuracy, inspect_model, load_model, predict
from nc_core.loading.models.keras_errors import load_error
from tests.helpers.tiny_models import SHAPE, image_model

# --------------------------------------------------------------------------- load_model


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_loads_good_models(model_files, suffix):
    model = load_model(model_files["probs" + suffix])
    assert isinstance(model, keras.Model)
    assert inspect_model(model) == ModelInfo(SHAPE, 3, 8 * 8 * 3 + 3, True, "tiny")


def test_loads_sequential(model_files):
    info = inspect_model(load_model(str(model_files["seq.keras"])))
    assert info.num_classes == 4 and info.outputs_probabilities


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_refused_and_never_run(model_files, suffix):
    with pytest.raises(UnsafeModelError, match="Python code .*refused for safety"):
        load_model(model_files["lambda" + suffix])
    assert not os.path.exists(model_files["marker"])


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_safe_mode_refusal_maps_to_unsafe(model_files, suffix):
    """Keras 3.15 itself refuses the lambda with a ValueError; our mapping names it unsafe."""
    with pytest.raises(ValueError, match="safe_mode") as caught:
        keras.saving.load_model(model_files["lambda" + suffix], compile=False, safe_mode=True)
    assert not os.path.exists(model_files["marker"])
    assert isinstance(load_error("m", caught.value), UnsafeModelError)


def test_lambda_named_function_refused(tmp_path):
    model = image_model()
    config = model.get_config()
    config["layers"][1]["class_name"] = "Flatten"
    config["layers"][1]["config"]["function"] = {"module": "os", "class_name": "function", "config": "system"}
    with pytest.raises(UnsafeModelError, match="'function'"):
        models.refuse_unsafe_config(config)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_custom_layer_named(model_files, suffix):
    with pytest.raises(ModelLoadError, match="custom layer or function 'Doubler'") as caught:
        load_model(model_files["custom" + suffix])
    assert not isinstance(caught.value, UnsafeModelError)


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope.keras")


@pytest.mark.parametrize("name", ["model.pt", "model.onnx", "model", "saved_model.pb"])
def test_unknown_extension(tmp_path, name):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"save the model as \.keras"):
        load_model(tmp_path / name)


def test_directory_refused(tmp_path):
    (tmp_path / "m.keras").mkdir()
    with pytest.raises(ModelLoadError, match="is not a regular file"):
        load_model(tmp_path / "m.keras")


@pytest.mark.parametrize("suffix,message", [(".keras", "not a .keras file"), (".h5", "not an HDF5")])
@pytest.mark.parametrize("content", ["random", "empty", "truncated"])
def test_bad_bytes(model_files, tmp_path, suffix, message, content):
    good = model_files["probs" + suffix].read_bytes()
    data = {"random": np.random.default_rng(1).bytes(4000), "empty": b"", "truncated": good[: len(good) // 2]}
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(data[content])
    with pytest.raises(ModelLoadError, match=message):
        load_model(path)


def test_zip_without_config(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path / "m.keras")


def test_config_not_json(tmp_path):
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("config.json", "{not json")
    with pytest.raises(ModelLoadError, match="not readable JSON"):
        load_model(tmp_path / "m.keras")


def test_keras_archive_without_weights(model_files, tmp_path):
    with zipfile.ZipFile(model_files["probs.keras"]) as source, zipfile.ZipFile(tmp_path / "m.keras", "w") as target:
        for name in ("config.json", "metadata.json"):
            target.writestr(name, source.read(name))
    with pytest.raises(ModelLoadError, match="Keras could not load 'm.keras'"):
        load_model(tmp_path / "m.keras")


def test_weights_only_h5(model_files):
    with pytest.raises(ModelLoadError, match="only weights"):
        load_model(model_files["weights.h5"])


# --------------------------------------------------------------------------- inspect_model


def test_two_inputs_refused():
    a, b = keras.Input(SHAPE), keras.Input(SHAPE)
    joined = keras.layers.Flatten()(keras.layers.Concatenate()([a, b]))
    model = keras.Model([a, b], keras.layers.Dense(3)(joined))
    with pytest.raises(ModelLoadError, match="takes 2 inputs; the scanner needs one image input"):
        inspect_model(model)


def test_flat_input_refused():
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    with pytest.raises(ModelLoadError, match=r"shape \(None, 16\).*\(batch, height, width, channels\)"):
        inspect_model(model)


def test_unknown_image_size_refused():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(ModelLoadError, match="fixed height, width"):
        inspect_model(model)


def test_channels_first_refused():
    inputs = keras.Input((3, 8, 8))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ModelLoadError, match="8 channels"):
        inspect_model(model)


def test_regression_output_refused():
    with pytest.raises(ModelLoadError, match="outputs 1 value per input: it looks like a regression or binary"):
        inspect_model(image_model(units=1, activation=None))


def test_two_outputs_refused():
    inputs = keras.Input(SHAPE)
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(3)(flat), keras.layers.Dense(2)(flat)])
    with pytest.raises(ModelLoadError, match="has 2 outputs"):
        inspect_model(model)


def test_image_output_refused():
    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    with pytest.raises(ModelLoadError, match=r"outputs shape \(None, 8, 8, 3\)"):
        inspect_model(model)


def test_unbuilt_model_refused():
    with pytest.raises(ModelLoadError, match="no defined inputs"):
        inspect_model(keras.Sequential([keras.layers.Dense(3)]))


def test_probabilities_from_activation_and_sample():
    x = np.random.default_rng(0).random((5, *SHAPE), dtype=np.float32) * 50
    assert inspect_model(image_model()).outputs_probabilities
    assert inspect_model(image_model(), x).outputs_probabilities
    assert not inspect_model(image_model(activation=None)).outputs_probabilities
    assert not inspect_model(image_model(activation=None), x).outputs_probabilities
    assert not inspect_model(image_model(activation="sigmoid")).outputs_probabilities


def test_softmax_layer_and_nested_model_detected():
    inner = image_model(activation=None)
    inputs = keras.Input(SHAPE)
    assert inspect_model(keras.Model(inputs, keras.layers.Softmax()(inner(inputs)))).outputs_probabilities
    assert inspect_model(keras.Model(inputs, image_model()(inputs))).outputs_probabilities


def test_sample_of_wrong_shape():
    with pytest.raises(InvalidDataError, match="the model takes"):
        inspect_model(image_model(), np.zeros((2, 4, 4, 1), np.float32))


def test_logits_model_wrapped_to_probabilities(model_files):
    model = load_model(model_files["logits.keras"])
    x = np.random.default_rng(0).random((7, *SHAPE), dtype=np.float32) * 10
    info = inspect_model(model, x)
    assert not info.outputs_probabilities
    classifier = as_classifier(model, info)
    assert classifier is not model and classifier.layers[-1].name == "nc_softmax"
    probs = predict(classifier, x)
    assert probs.shape == (7, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(1), predict(model, x).argmax(1))
    assert inspect_model(classifier, x).outputs_probabilities


def test_probability_model_not_wrapped():
    model = image_model()
    assert as_classifier(model, inspect_model(model)) is model


def test_predict_batches_and_accuracy():
    model = image_model()
    x = np.random.default_rng(0).random((10, *SHAPE), dtype=np.float32)
    whole = predict(model, x, batch_size=256)
    np.testing.assert_allclose(predict(model, x, batch_size=3), whole, atol=1e-6)
    assert predict(model, x[:0]).shape == (0, 3)
    y = whole.argmax(1)
    assert clean_accuracy(model, x, y) == 1.0
    assert clean_accuracy(model, x, (y + 1) % 3) == 0.0
    assert clean_accuracy(model, x, np.where(np.arange(10) < 5, y, -1)) == 1.0


def test_predict_and_accuracy_errors():
    model = image_model()
    x = np.zeros((4, *SHAPE), np.float32)
    with pytest.raises(InvalidParameterError, match="batch size"):
        predict(model, x, batch_size=0)
    with pytest.raises(InvalidDataError, match="4 images but 3 labels"):
        clean_accuracy(model, x, np.zeros(3, int))
    with pytest.raises(InvalidDataError, match="needs labelled images"):
        clean_accuracy(model, x, np.full(4, -1))


# --------------------------------------------------------------------------- property


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    suffix=st.sampled_from([".keras", ".h5"]),
    position=st.floats(0, 1),
    patch=st.binary(min_size=1, max_size=16),
    random_file=st.booleans(),
)
def test_damaged_model_files_only_raise_model_load_error(model_files, suffix, position, patch, random_file):
    """Random or patched model files end in a model or a ModelLoadError, never another exception."""
    good = model_files["probs" + suffix].read_bytes()
    at = int(position * (len(good) - 1))
    raw = patch * 64 if random_file else good[:at] + patch + good[at + len(patch) :]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "m" + suffix)
        with open(path, "wb") as file:
            file.write(raw)
        try:
            load_model(path)
        except ModelLoadError as error:
            assert str(error) and "\n" not in str(error)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_weights_checked_against_the_architecture_still_load(tmp_path, monkeypatch, suffix):
    """With the weight check forced on (every model above the threshold), real models still load:
    their declared weights match what their architecture builds, BatchNorm statistics and the
    optimizer's state included."""
    from nc_core.loading import limits

    monkeypatch.setattr(limits, "WEIGHTS_CHECK_BYTES", 0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Add()([x, keras.layers.Conv2D(8, 1)(inputs)])
    outputs = keras.layers.Dense(5, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")  # saved with its Adam moments
    model.fit(np.zeros((4, 16, 16, 3)), np.arange(4), verbose=0)
    path = tmp_path / f"resnetish{suffix}"
    model.save(path)
    assert load_model(path).count_params() == model.count_params()
