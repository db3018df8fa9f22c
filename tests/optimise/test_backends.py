"""The engine on every Keras 3 backend: the same verdicts and L1s on TensorFlow, JAX and PyTorch.

A process runs one backend (``KERAS_BACKEND`` is read at Keras' first import), so the other
backends run the real command line in a subprocess, as a user would. JAX's CPU wheel is a test
dependency; PyTorch is not (CI leaves it out for its size), so its case runs where it is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from nc_core import backend
from nc_core.errors import InvalidParameterError
from nc_core.optimise.adam import adam_update
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.runner import make_engine
from tests.helpers.paths import ROOT, SAMPLES

MODEL = SAMPLES / "mnist_backdoored.keras"
DATA = SAMPLES / "mnist_data.npz"
#: Per-class L1 may differ across backends as it does between two sample orders on one: float
#: sums in another order can flip one epoch's penalty decision, and the schedule follows.
L1_SPREAD = 0.25


def test_adam_update_follows_keras_adam_step_by_step():
    variable = keras.Variable(np.array([1.0, -2.0, 0.5], np.float32))
    optimizer = keras.optimizers.Adam(learning_rate=0.1, beta_1=0.5, beta_2=0.9)
    param, m, v = np.array([1.0, -2.0, 0.5], np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32)
    for step, grad in enumerate([[0.3, -1.0, 2.0], [0.1, 0.4, -0.2], [-0.5, 0.0, 1.0]], start=1):
        grad = np.array(grad, np.float32)
        optimizer.apply_gradients([(grad, variable)])
        param, m, v = adam_update(param, grad, m, v, float(step), 0.1, 0.5, 0.9)
    np.testing.assert_allclose(backend.to_numpy(param), variable.numpy(), rtol=1e-6)


def test_a_compiled_loop_of_gradient_steps_descends_on_this_backend():
    grad = backend.value_and_grad(lambda params, target: (keras.ops.sum((params[0] - target) ** 2), params[0]))

    def step(state, _row):
        (_, _), (g,) = grad([state], 3.0)
        return state - 0.25 * g, keras.ops.sum(g)

    run = backend.compile_function(lambda state, rows: backend.scan_steps(step, state, rows))
    final, _ = run(keras.ops.zeros((2,)), keras.ops.zeros((8,), "int32"))
    np.testing.assert_allclose(backend.to_numpy(final), [3 - 3 * 0.5**8] * 2, rtol=1e-5)


def test_the_report_says_which_backend_and_device_ran_the_scan(mnist_backdoored):
    from nc_core.detection.scan import scan

    report = scan(mnist_backdoored.classifier, mnist_backdoored.data, classes=[7], config=CleanseConfig(epochs=2))
    assert (report.backend, report.device) == ("tensorflow", "CPU")
    assert report.to_dict(include_arrays=False)["backend"] == "tensorflow"


def _cli(keras_backend: str, *arguments: str) -> str:
    env = {**os.environ, "KERAS_BACKEND": keras_backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "nc_core", *arguments, str(MODEL), str(DATA), "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _cli_scan(keras_backend: str, classes_per_step: int = 1) -> dict:
    return json.loads(_cli(keras_backend, "scan", "--format", "json", "--classes-per-step", str(classes_per_step)))


def _reversed_l1(keras_backend: str, out) -> float:
    _cli(keras_backend, "reverse", "--target", "7", "--epochs", "5", "--out", str(out / keras_backend))
    return json.loads((out / keras_backend / "result.json").read_text())["l1"]


@pytest.fixture(scope="module")
def tensorflow_scan() -> dict:
    return _cli_scan("tensorflow")


def _installed(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed here (JAX is a test dependency; PyTorch is optional)")


@pytest.mark.integration
@pytest.mark.parametrize("other", ["jax", "torch"])
def test_one_class_on_another_backend_follows_tensorflow_step_for_step(other, tmp_path):
    _installed(other)
    assert _reversed_l1(other, tmp_path) == pytest.approx(_reversed_l1("tensorflow", tmp_path), rel=1e-3)


@pytest.mark.integration
@pytest.mark.parametrize("other", ["jax", "torch"])
def test_every_class_in_one_step_on_another_backend_gives_the_tensorflow_verdict_and_l1s(other, tensorflow_scan):
    """The accelerator path: all ten classes in one batched step, as a GPU scan runs them."""
    _installed(other)
    found = _cli_scan(other, classes_per_step=10)
    assert (found["backend"], found["device"]) == (other, "CPU")
    assert found["verdict"] == tensorflow_scan["verdict"] == "backdoored"
    assert found["flagged"] == tensorflow_scan["flagged"] == [7]
    # The judged L1s: which classes the screen sends to the full schedule may differ with the
    # sample order, and a screened class is judged by its L1 scaled to the full schedule.
    l1 = {row["class"]: row["full_budget_l1"] for row in found["classes"]}
    expected = {row["class"]: row["full_budget_l1"] for row in tensorflow_scan["classes"]}
    assert l1.keys() == expected.keys()
    np.testing.assert_allclose([l1[c] for c in sorted(l1)], [expected[c] for c in sorted(l1)], rtol=L1_SPREAD)


def test_the_tutorial_engine_names_the_backend_it_needs(mnist_backdoored, monkeypatch):
    monkeypatch.setattr(backend, "backend_name", lambda: "jax")
    config = CleanseConfig(engine="legacy")
    with pytest.raises(InvalidParameterError, match="TensorFlow backend only.*'jax'"):
        make_engine(mnist_backdoored.classifier, mnist_backdoored.data, config)
