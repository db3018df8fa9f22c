"""Detection on the shipped samples: the real optimisation, on real backdoored and clean models.

Each scan runs once per session (product defaults) and every test below reads its report.
The verdicts are checked against the model cards, which record the real trigger and target.
"""

import json

import numpy as np
import pytest

from nc_core.detection.scan import scan
from nc_core.optimise.config import CleanseConfig
from tests.helpers.paths import sample_path

pytestmark = pytest.mark.slow


def card(name: str) -> dict:
    return json.loads(sample_path(f"{name}.json").read_text())


def full_scan(inputs, model: str, on_event=None):
    """Every class with the product defaults, as `python -m nc_core scan` runs it."""
    return scan(inputs.classifier, inputs.data, model_name=f"{model}.keras", on_event=on_event)


MNIST_EVENTS = []


@pytest.fixture(scope="session")
def signs_backdoored_report(signs_backdoored):
    return full_scan(signs_backdoored, "signs_backdoored")


@pytest.fixture(scope="session")
def signs_clean_report(signs_clean):
    return full_scan(signs_clean, "signs_clean")


@pytest.fixture(scope="session")
def mnist_backdoored_report(mnist_backdoored):
    return full_scan(mnist_backdoored, "mnist_backdoored", on_event=MNIST_EVENTS.append)


@pytest.fixture(scope="session")
def mnist_clean_report(mnist_clean):
    return full_scan(mnist_clean, "mnist_clean")


def test_scan_flags_target_33_on_backdoored_signs(signs_backdoored_report):
    report = signs_backdoored_report
    target = card("signs_backdoored")["target"]
    assert target == 33
    assert report.verdict == "backdoored"
    assert target in report.flagged
    row = report.dataframe().loc[target]
    assert row["anomaly_index"] > 2
    assert row["l1"] == min(r.l1 for r in report.rows)
    assert report.anomaly_index > 2
    assert report.result_for(target).asr > 0.9


def test_scan_finds_the_corner_square_on_backdoored_signs(signs_backdoored_report):
    mask = signs_backdoored_report.result_for(33).mask
    corner = mask[26:, 26:].sum()
    assert corner / mask.sum() > 0.5, "most of the recovered mask should sit on the real 4x4 trigger"


def test_scan_finds_clean_signs_twin_clean(signs_clean_report):
    assert signs_clean_report.verdict == "clean", signs_clean_report.dataframe().sort_values("l1").head()
    assert signs_clean_report.flagged == []
    assert len(signs_clean_report.rows) == 43


def test_scan_flags_the_mnist_target(mnist_backdoored_report):
    target = card("mnist_backdoored")["target"]
    assert mnist_backdoored_report.verdict == "backdoored"
    assert target in mnist_backdoored_report.flagged
    assert mnist_backdoored_report.dataframe().loc[target, "anomaly_index"] > 2


def test_only_the_classes_that_matter_get_the_full_schedule(signs_backdoored_report, mnist_backdoored_report):
    for report in (signs_backdoored_report, mnist_backdoored_report):
        screened = report.screened
        assert screened and len(screened) >= len(report.rows) // 2
        assert all(report.dataframe().loc[k, "full_schedule"] for k in report.flagged)
        assert all(report.result_for(k).epochs == CleanseConfig().screen_epochs for k in screened)
        assert 0.2 < report.budget_scale < 1, "a screened mask still shrinks under the full schedule"
        assert report.summary()["steps"] == sum(c["steps"] for c in report.summary()["classes"])
    assert signs_backdoored_report.steps < 0.5 * 43 * CleanseConfig().epochs * 10


def test_the_progress_of_a_screened_scan_never_goes_back(mnist_backdoored_report):
    fractions = [e.fraction for e in MNIST_EVENTS]
    assert fractions == sorted(fractions)
    assert fractions[-1] > 0.8
    assert max(e.num_classes for e in MNIST_EVENTS) > 10, "full runs and restarts are counted as runs"


def test_scan_finds_clean_mnist_twin_clean(mnist_clean_report):
    assert mnist_clean_report.verdict == "clean", mnist_clean_report.dataframe().sort_values("l1").head()


def test_legacy_engine_reaches_the_same_verdict_on_mnist(mnist_backdoored, mnist_backdoored_report):
    legacy = scan(mnist_backdoored.classifier, mnist_backdoored.data, config=CleanseConfig(engine="legacy"))
    assert legacy.verdict == mnist_backdoored_report.verdict
    assert legacy.flagged == mnist_backdoored_report.flagged
    keras_l1 = np.array([r.l1 for r in mnist_backdoored_report.rows])
    legacy_l1 = np.array([r.l1 for r in legacy.rows])
    np.testing.assert_allclose(legacy_l1, keras_l1, rtol=0.15)


def test_the_batched_engine_reaches_the_same_verdict_and_l1s_on_mnist(mnist_backdoored, mnist_backdoored_report):
    batched = scan(mnist_backdoored.classifier, mnist_backdoored.data, config=CleanseConfig(classes_per_step=4))
    assert batched.verdict == mnist_backdoored_report.verdict == "backdoored"
    assert batched.flagged == mnist_backdoored_report.flagged
    assert {r.target: r.engine for r in batched.results} == {k: "batched" for k in range(10)}
    one_by_one = np.array([r.judged_l1 for r in mnist_backdoored_report.rows])
    np.testing.assert_allclose([r.judged_l1 for r in batched.rows], one_by_one, rtol=0.25)


def test_legacy_engine_reaches_the_same_verdict_on_clean_mnist(mnist_clean, mnist_clean_report):
    legacy = scan(mnist_clean.classifier, mnist_clean.data, config=CleanseConfig(engine="legacy"))
    assert legacy.verdict == mnist_clean_report.verdict == "clean"


def test_legacy_engine_flags_33_on_backdoored_signs(signs_backdoored):
    classes = [0, 3, 9, 14, 16, 21, 27, 33, 38, 40]
    keras_report = scan(signs_backdoored.classifier, signs_backdoored.data, classes)
    legacy_report = scan(signs_backdoored.classifier, signs_backdoored.data, classes, CleanseConfig(engine="legacy"))
    assert 33 in keras_report.flagged and 33 in legacy_report.flagged
    assert legacy_report.result_for(33).l1 == pytest.approx(keras_report.result_for(33).l1, rel=0.15)
