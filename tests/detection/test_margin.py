"""The max-margin detector (nc_core.detection.margin): its statistic, and the real optimisation on
the shipped twins, whose backdoor target the model can be driven to answer abnormally hard."""

import math

import numpy as np
import pytest

from nc_core.detection.margin import (
    MarginConfig,
    fit_gamma,
    gamma_cdf,
    gamma_sf,
    logits_function,
    margin_score,
    margin_statistics,
    max_margin_scan,
)
from nc_core.errors import InvalidParameterError


def test_gamma_fit_recovers_its_parameters_and_the_tail_is_accurate():
    rng = np.random.default_rng(3)
    for shape, scale in [(0.7, 3.0), (4.0, 2.0), (25.0, 0.1)]:
        a, b = fit_gamma(rng.gamma(shape, scale, 20000))
        assert a == pytest.approx(shape, rel=0.05) and b == pytest.approx(scale, rel=0.05)
    # Exponential tails in closed form, far out where 1 - cdf would round to 0.
    for x in (0.5, 3.0, 40.0, 600.0):
        assert math.isclose(gamma_sf(x, 1.0, 1.0), math.exp(-x), rel_tol=1e-9)
        assert math.isclose(gamma_cdf(x, 1.0, 1.0) + gamma_sf(x, 1.0, 1.0), 1.0, rel_tol=1e-12)


def test_one_outlying_margin_is_flagged_and_similar_margins_are_not():
    rng = np.random.default_rng(0)
    natural = list(rng.gamma(30.0, 1.0, 10))
    p, flagged = margin_statistics(natural)
    assert flagged == [] and p[int(np.argmax(natural))] > 0.05
    backdoored = natural[:4] + [6 * max(natural)] + natural[5:]
    p, flagged = margin_statistics(backdoored)
    assert flagged == [4] and p[4] < 1e-3
    assert margin_score(p[4]) > 1 > margin_score(0.2)


def test_only_the_largest_margin_is_flagged():
    """MM-BD infers one target; a narrow null below it would flag natural classes beside it."""
    values = [118.2, 54.6, 52.8, 49.5, 48.8, 48.0, 47.0, 46.0, 45.0, 44.0]  # the shipped MNIST twin's shape
    p, flagged = margin_statistics(values)
    assert flagged == [0]
    assert all(0 < q <= 1 for q in p)


def test_too_few_classes_or_non_finite_margins_flag_nothing():
    assert margin_statistics([1.0, 100.0])[1] == []
    assert margin_statistics([1.0, 2.0, float("nan"), 100.0])[1] == []


def test_a_sample_of_all_classes_gives_the_full_test():
    rng = np.random.default_rng(1)
    values = list(rng.gamma(30.0, 1.0, 12))
    values[5] = 5 * max(values)
    full = margin_statistics(values)
    sampled = margin_statistics(values, sample=range(12))
    assert sampled[1] == full[1] == [5]
    assert np.allclose(sampled[0], full[0])


def test_a_sampled_null_judges_the_largest_of_many_classes():
    """Only a random sample and the leaders are measured: NaN for the rest, the exponent for all."""
    rng = np.random.default_rng(2)
    values = np.full(1000, np.nan)
    sample = sorted(rng.choice(1000, 48, replace=False))
    values[sample] = rng.gamma(30.0, 1.0, 48)
    values[123] = 4 * np.nanmax(values)
    p, flagged = margin_statistics(values, sample=sample)
    assert flagged == [123]
    assert math.isnan(p[0 if 0 not in sample else 1]) and all(0 < p[c] <= 1 for c in sample)
    natural = values.copy()
    natural[123] = np.nanmax(values[sample]) * 1.05  # a natural leader, barely above the sample
    assert margin_statistics(natural, sample=sample)[1] == []
    # the same leader among 1,000 classes is less surprising than among the 48 of the sample alone
    alone = margin_statistics(list(values[sample]) + [values[123] * 0.45])[0][-1]
    among_many = margin_statistics(np.where(np.arange(1000) == 123, values[123] * 0.45, values), sample=sample)[0][123]
    assert among_many > alone


def test_bad_settings_are_refused():
    with pytest.raises(InvalidParameterError):
        MarginConfig(starts=0).validate()
    with pytest.raises(InvalidParameterError):
        MarginConfig(learning_rate=float("nan")).validate()


def test_logits_are_read_before_the_softmax(mnist_clean):
    classifier = mnist_clean.classifier
    logits, source = logits_function(classifier)
    x = mnist_clean.data.model_inputs()[:8]
    z = np.asarray(logits(x))
    probabilities = np.asarray(classifier(x, training=False))
    assert source in ("dense", "softmax-input")
    softmax = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(softmax / softmax.sum(axis=1, keepdims=True), probabilities, atol=1e-5)


@pytest.mark.integration
def test_the_backdoor_target_answers_hardest_and_the_clean_twin_has_none(mnist_backdoored, mnist_clean):
    backdoored = max_margin_scan(mnist_backdoored.classifier, mnist_backdoored.data.pixel_range)
    clean = max_margin_scan(mnist_clean.classifier, mnist_clean.data.pixel_range)
    assert backdoored.flagged == [7], backdoored.margins
    assert int(np.argmax(backdoored.margins)) == 7
    assert clean.flagged == [], clean.p_values
    assert len(backdoored.images) == 10 and backdoored.images[7].shape == (28, 28, 1)
    assert 0.0 <= float(backdoored.images[7].min()) and float(backdoored.images[7].max()) <= 1.0
    assert backdoored.steps == MarginConfig().steps
