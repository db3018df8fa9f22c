"""Fixtures of the whole suite: the shipped mnist twins (loaded once per session), tiny model files
for the loaders and the command line, and a data directory of a test's own.

Plain helpers (builders, constants, paths) live in ``tests/helpers/``; fixtures only one folder's
tests use live in that folder's ``conftest.py``."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests.helpers.samples import load_sample  # noqa: E402


@pytest.fixture(scope="session")
def mnist_backdoored():
    return load_sample("mnist_backdoored")


@pytest.fixture(scope="session")
def mnist_clean():
    return load_sample("mnist_clean")


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A data directory of the test's own (runs, uploads, audits)."""
    from tests.helpers.app import use_data_dir

    return use_data_dir(monkeypatch, tmp_path / "nc_data")


@pytest.fixture(scope="session")
def model_files(tmp_path_factory):
    """Every model file the tests load, saved once per session."""
    import keras

    from tests.helpers.tiny_models import SHAPE, Doubler, image_model, lambda_model

    root = tmp_path_factory.mktemp("models")
    out = {"root": root, "marker": str(root / "lambda_ran")}
    saved = {
        "probs": image_model(),
        "logits": image_model(activation=None, name="logits"),
        "lambda": lambda_model(out["marker"]),
    }
    inputs = keras.Input(SHAPE)
    saved["custom"] = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(Doubler()(inputs))))
    for name, model in saved.items():
        for suffix in (".keras", ".h5"):
            path = root / f"{name}{suffix}"
            model.save(path)
            out[name + suffix] = path
    seq = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")])
    seq.save(root / "seq.keras")
    out["seq.keras"] = root / "seq.keras"
    saved["probs"].save_weights(root / "only.weights.h5")
    out["weights.h5"] = root / "only.weights.h5"
    return out
