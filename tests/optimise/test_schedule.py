"""The paper's lambda schedule, fed scripted epochs (the schedule itself has no model in it)."""

import math

import pytest

from nc_core.errors import InvalidParameterError
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.schedule import LambdaSchedule


def _feed(schedule, asrs, best_l1=math.inf):
    lams = []
    for asr in asrs:
        schedule.update(asr, best_l1)
        lams.append(schedule.lam)
    return lams


def test_lambda_stays_zero_until_patience_successes_in_a_row():
    schedule = LambdaSchedule(CleanseConfig(patience=3, init_cost=1e-3))
    assert _feed(schedule, [1.0, 1.0, 0.5, 1.0, 1.0]) == [0, 0, 0, 0, 0]
    assert _feed(schedule, [1.0]) == [1e-3]


def test_lambda_goes_up_after_patience_successes_and_down_after_patience_failures():
    c = CleanseConfig(patience=2, init_cost=1e-3)
    schedule = LambdaSchedule(c)
    _feed(schedule, [1.0, 1.0])
    assert schedule.lam == 1e-3
    assert _feed(schedule, [1.0, 1.0]) == [1e-3, 2e-3]
    lams = _feed(schedule, [0.5, 0.5])
    assert lams[-1] == pytest.approx(2e-3 / c.cost_multiplier_down)


def test_early_stop_needs_both_directions_and_a_stalled_best():
    c = CleanseConfig(patience=1, early_stop_patience=3)
    schedule = LambdaSchedule(c)
    schedule.update(1.0, 50.0)  # lambda set
    schedule.update(1.0, 40.0)  # up
    assert not schedule.should_stop
    schedule.update(0.5, 40.0)  # down, stalled 1
    schedule.update(0.5, 40.0)  # stalled 2
    assert not schedule.should_stop
    schedule.update(0.5, 40.0)  # stalled 3
    assert schedule.should_stop


def test_improving_best_resets_the_early_stop_count():
    schedule = LambdaSchedule(CleanseConfig(patience=1, early_stop_patience=2))
    for asr, best in [(1.0, 50), (1.0, 50), (0.5, 50), (0.5, 49), (0.5, 49)]:
        schedule.update(asr, best)
    assert not schedule.should_stop


def test_original_defaults_are_the_papers():
    c = CleanseConfig.original()
    assert (c.epochs, c.steps_for(10_000), c.batch_size, c.patience, c.early_stop_patience) == (1000, 31, 32, 5, 25)
    assert (c.learning_rate, c.beta_1, c.beta_2, c.init_cost, c.attack_succ_threshold) == (0.1, 0.5, 0.9, 1e-3, 0.99)
    assert c.cost_multiplier_down == pytest.approx(2**1.5)


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"epochs": 0}, "Epochs"),
        ({"epochs": 10**7}, "Epochs"),
        ({"batch_size": 0}, "Batch size"),
        ({"batch_size": 5000}, "larger than"),
        ({"learning_rate": -1.0}, "Learning rate"),
        ({"method": "blend"}, "Method"),
        ({"engine": "torch"}, "Engine"),
    ],
)
def test_out_of_range_settings_are_refused_with_a_sentence(change, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        CleanseConfig(**change).validate(num_samples=1000)
