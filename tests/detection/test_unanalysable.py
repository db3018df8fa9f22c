"""No verdict from a model or data that cannot be analysed: a clear error or "inconclusive", never "clean"."""

import keras
import numpy as np
import pytest

from nc_core.detection.scan import scan
from nc_core.errors import InvalidParameterError, ModelLoadError
from nc_core.loading.inputs import load_inputs
from nc_core.optimise.config import MIN_SAMPLES, CleanseConfig
from tests.helpers.paths import sample_path


def saved(tmp_path, model: keras.Model, name: str):
    path = tmp_path / name
    model.save(path)
    return path


def test_a_model_behind_an_integer_input_is_refused_with_the_fix(tmp_path, mnist_backdoored):
    inputs = keras.Input((28, 28, 1), dtype="uint8")
    outputs = mnist_backdoored.classifier(keras.ops.cast(inputs, "float32"))
    path = saved(tmp_path, keras.Model(inputs, outputs), "uint8.keras")
    with pytest.raises(ModelLoadError, match="uint8.*float32 input"):
        load_inputs(path, sample_path("mnist_data.npz"))


@pytest.mark.parametrize("which", ["all", "one bias"])
def test_a_model_with_nan_weights_is_refused(tmp_path, which):
    model = keras.models.load_model(sample_path("mnist_clean.keras"))
    weights = model.get_weights()
    if which == "all":
        weights = [np.full_like(w, np.nan) for w in weights]
    else:
        weights[-1] = weights[-1].copy()
        weights[-1][0] = np.nan
    model.set_weights(weights)
    with pytest.raises(ModelLoadError, match="NaN or infinite"):
        load_inputs(saved(tmp_path, model, "nan.keras"), sample_path("mnist_data.npz"))


@pytest.mark.integration
def test_data_of_one_class_leaves_that_class_unmeasured_and_the_verdict_inconclusive(mnist_clean):
    data = mnist_clean.data
    only_threes = data.subset(np.flatnonzero(data.y == 3)[:40])
    report = scan(mnist_clean.classifier, only_threes, [2, 3, 5], CleanseConfig(epochs=3, confirm_runs=0))
    assert report.unmeasurable == [3]
    assert report.verdict == "inconclusive" and "not a number" in report.verdict_reason
    assert report.summary()["unmeasurable"] == [3]


def test_too_few_samples_are_refused_before_anything_runs(mnist_clean):
    few = mnist_clean.data.subset(np.arange(MIN_SAMPLES - 1))
    with pytest.raises(InvalidParameterError, match=f"at least {MIN_SAMPLES} clean images"):
        scan(mnist_clean.classifier, few, [0], CleanseConfig(epochs=2, batch_size=1))
