import numpy as np
import pytest

from nc_core.detect import MAD_CONSISTENCY, anomaly_indices


def test_small_outlier_is_flagged_with_the_papers_formula():
    l1 = [10.0, 50.0, 52.0, 55.0, 49.0, 51.0]
    out = anomaly_indices(l1)
    median = np.median(l1)
    mad = MAD_CONSISTENCY * np.median(np.abs(np.array(l1) - median))
    assert out.median == pytest.approx(median) and out.mad == pytest.approx(mad)
    assert out.indices[0] == pytest.approx(abs(10.0 - median) / mad)
    assert out.flagged == [0]
    assert out.model_index == pytest.approx(out.indices[0])


def test_large_outlier_is_not_a_backdoor():
    out = anomaly_indices([50.0, 51.0, 49.0, 52.0, 48.0, 400.0])
    assert out.indices[-1] > 2
    assert out.flagged == []


def test_similar_norms_flag_nothing():
    out = anomaly_indices(np.linspace(50, 70, 43))
    assert out.flagged == []
    assert max(out.indices) == pytest.approx(10 / (MAD_CONSISTENCY * 5), rel=0.05)


def test_identical_norms_have_zero_index():
    out = anomaly_indices([7.0, 7.0, 7.0])
    assert out.mad == 0 and out.indices == [0.0, 0.0, 0.0] and out.flagged == []


def test_empty_input_gives_empty_statistics():
    out = anomaly_indices([])
    assert out.indices == [] and out.flagged == [] and out.model_index == 0.0


def test_the_report_states_the_l1_below_which_classes_are_flagged():
    from nc_core.cleanse import TriggerResult
    from nc_core.report import make_report

    l1 = [10.0, 50.0, 52.0, 55.0, 49.0, 51.0]
    results = [TriggerResult(k, "neural-cleanse", "keras", np.zeros((2, 2)), np.zeros((2, 2, 3)), v, 1.0, 1.0,
                             True, 1, 1, 0.1) for k, v in enumerate(l1)]
    report = make_report(results, "m", "d")
    out = anomaly_indices(l1)
    assert report.detection_l1 == pytest.approx(min(out.median - 2 * out.mad, 0.5 * out.median))
    assert [r.class_id for r in report.rows if r.l1 < report.detection_l1] == report.flagged == [0]
    assert report.summary()["detection_l1"] == report.detection_l1


def test_a_class_that_stands_out_but_is_not_far_smaller_is_not_flagged():
    """Naturally similar classes: index above 2, but the mask is 0.6 of the median."""
    l1 = [63.0] + list(np.linspace(88, 125, 42))
    out = anomaly_indices(l1)
    assert out.indices[0] > 2 and out.flagged == []
    assert anomaly_indices(l1, max_ratio=1.0).flagged == [0]  # the paper's rule alone
    assert anomaly_indices([10.0] + l1[1:]).flagged == [0]


def test_stored_settings_give_the_detection_rule():
    from nc_core.detect import detection_rule

    assert detection_rule({}) == {"threshold": 2.0, "max_ratio": 0.5}
    assert detection_rule({"threshold": 3, "max_ratio": 1}) == {"threshold": 3.0, "max_ratio": 1.0}
