import keras
import numpy as np
import pytest

from nc_core.optimise.trigger import Trigger, mask_l1, stamp


def _built(method, shape=(None, 8, 8, 3)):
    trigger = Trigger(method, seed=3)
    trigger.build(shape)
    return trigger


def test_plain_trigger_starts_at_zero_and_leaves_images_untouched():
    trigger = _built("plain")
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    assert trigger.mask_weight.shape == (8, 8, 3)
    np.testing.assert_allclose(np.asarray(trigger(x)), x, atol=1e-7)


def test_neural_cleanse_mask_is_one_channel_in_unit_range():
    trigger = _built("neural-cleanse")
    mask, pattern = np.asarray(trigger.mask()), np.asarray(trigger.pattern())
    assert mask.shape == (8, 8, 1) and pattern.shape == (8, 8, 3)
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    assert 0.0 <= pattern.min() and pattern.max() <= 1.0


def test_call_computes_the_trigger_formula():
    trigger = _built("neural-cleanse")
    x = np.random.default_rng(1).random((4, 8, 8, 3)).astype(np.float32)
    m, p = np.asarray(trigger.mask()), np.asarray(trigger.pattern())
    np.testing.assert_allclose(np.asarray(trigger(x)), x * (1 - m) + m * p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stamp(x, m[..., 0], p), x * (1 - m) + m * p, rtol=1e-5, atol=1e-6)


def test_reset_with_the_same_seed_restarts_identically():
    trigger = _built("neural-cleanse")
    first = np.asarray(trigger.mask()).copy()
    trigger.reset(99)
    assert not np.allclose(first, np.asarray(trigger.mask()))
    trigger.reset(3)
    np.testing.assert_allclose(first, np.asarray(trigger.mask()))


def test_mask_l1_counts_one_channel():
    trigger = _built("plain")
    trigger.mask_weight.assign(np.ones((8, 8, 3), np.float32))
    assert float(trigger.mask_l1()) == pytest.approx(64.0)
    assert mask_l1(np.ones((8, 8, 3))) == pytest.approx(64.0)
    assert mask_l1(np.ones((8, 8))) == pytest.approx(64.0)


@pytest.mark.parametrize("method", ["plain", "neural-cleanse"])
def test_trigger_composes_with_a_frozen_model_and_round_trips_its_config(method, tmp_path):
    frozen = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")]
    )
    frozen.trainable = False
    model = keras.Sequential([keras.Input((8, 8, 3)), Trigger(method), frozen])
    assert model(np.zeros((2, 8, 8, 3), np.float32)).shape == (2, 4)
    assert [w.name for w in model.trainable_weights] == ["mask", "pattern"]
    clone = Trigger.from_config(model.layers[0].get_config())
    assert (clone.method, clone.epsilon) == (method, model.layers[0].epsilon)
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded.layers[0].mask()), np.asarray(model.layers[0].mask()))


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        Trigger("blend")
