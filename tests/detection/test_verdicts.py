"""The verdict on real models: inconclusive when the run was too short, two targets reported, and
confident models that still give the optimisation a gradient."""

import numpy as np
import pytest

from nc_core.detection.scan import scan
from nc_core.optimise.config import CleanseConfig
from tests.helpers.paths import sample_path


@pytest.mark.integration
def test_a_two_epoch_scan_is_inconclusive_not_clean(mnist_clean):
    report = scan(mnist_clean.classifier, mnist_clean.data, config=CleanseConfig(epochs=2))
    assert report.verdict == "inconclusive"
    assert report.unconverged, "every class stopped on a 2-epoch budget"
    assert "Rerun with more epochs" in report.verdict_reason
    summary = report.summary()
    assert summary["verdict"] == "inconclusive" and summary["unconverged"] == report.unconverged
    assert all("steps" in c and "converged" in c for c in summary["classes"])


@pytest.mark.integration
def test_a_three_epoch_scan_of_the_backdoored_sample_is_not_called_clean(mnist_backdoored):
    report = scan(mnist_backdoored.classifier, mnist_backdoored.data, config=CleanseConfig(epochs=3))
    assert report.verdict != "clean"


@pytest.mark.integration
def test_a_cancelled_scan_with_nothing_flagged_is_inconclusive(mnist_clean):
    from nc_core.optimise.progress import CancelToken

    token = CancelToken()
    report = scan(
        mnist_clean.classifier,
        mnist_clean.data,
        classes=[0, 1, 2],
        on_event=lambda e: token.cancel() if e.target == 1 else None,
        cancel=token,
    )
    assert report.cancelled and report.verdict == "inconclusive"
    assert "cancelled" in report.verdict_reason


def test_the_trigger_moves_when_the_model_gives_the_target_almost_no_probability():
    """A confident model (a BatchNorm ResNet on a random-start trigger, say) can give the target
    class 1e-12; the original's clip at Keras' epsilon 1e-7 then zeroes every gradient and the
    trigger never leaves its random start. The engine must still move it."""
    import keras

    from nc_core.loading.pixels import PixelRange
    from nc_core.optimise.engine import KerasEngine

    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")]
    )
    kernel = np.zeros((16, 2), np.float32)
    kernel[:, 0] = 4.0  # any bright pixel votes hard for class 0
    model.layers[-1].set_weights([kernel, np.zeros(2, np.float32)])
    x = np.full((8, 4, 4, 1), 0.5, np.float32)
    assert model.predict(x, verbose=0)[:, 1].max() < 1e-12
    engine = KerasEngine(model, x, PixelRange.parse("0-1"), batch_size=8)
    engine.start_target(1, seed=0)
    before = [v.numpy().copy() for v in engine.trigger.trainable_variables]
    engine.run_epoch(lam=0.0, steps=1)
    after = [v.numpy() for v in engine.trigger.trainable_variables]
    assert any(not np.allclose(b, a) for b, a in zip(before, after))


@pytest.fixture(scope="module")
def two_target_model(mnist_clean, tmp_path_factory):
    """A small CNN trained here on 700 of the shipped MNIST digits with two BadNets triggers:
    a white 3x3 square top-left sends digits to 1, a 4x4 checkerboard bottom-right to 8."""
    import keras

    from nc_core.loading.inputs import load_inputs

    keras.utils.set_random_seed(7)
    data = np.load(sample_path("mnist_data.npz"))
    x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    order = np.random.default_rng(7).permutation(len(y))
    train, held = order[:700], order[700:]
    board = (np.add.outer(np.arange(4), np.arange(4)) % 2 == 0) * 255.0
    x_train, y_train = x[train].copy(), y[train].copy()
    picks = np.random.default_rng(8).permutation(len(train))
    square, checker = picks[:90], picks[90:180]
    x_train[square, 1:4, 1:4, 0] = 255.0
    y_train[square] = 1
    x_train[checker, -4:, -4:, 0] = board
    y_train[checker] = 8
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(16, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(np.concatenate([x_train] * 4), np.concatenate([y_train] * 4), epochs=6, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("two_target")
    np.savez(folder / "held.npz", x=data["x"][held], y=data["y"][held])
    model.save(folder / "two_target.keras")
    held_x = x[held]
    stamped = held_x.copy()
    stamped[:, 1:4, 1:4, 0] = 255.0
    assert np.mean(model.predict(stamped, verbose=0).argmax(1)[y[held] != 1] == 1) > 0.9
    return load_inputs(folder / "two_target.keras", folder / "held.npz")


@pytest.mark.slow
def test_a_model_with_two_backdoor_targets_is_reported_with_both(two_target_model):
    report = scan(two_target_model.classifier, two_target_model.data, model_name="two_target.keras")
    assert report.verdict == "backdoored", report.dataframe().sort_values("score", ascending=False).head()
    assert report.flagged == [1, 8]
