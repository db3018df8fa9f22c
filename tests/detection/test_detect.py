import numpy as np
import pytest

from nc_core.detection.detect import MAD_CONSISTENCY, DetectionRule, anomaly_indices, detect, detection_l1, size_credit


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


def _results(l1, masks=None, **fields):
    from nc_core.optimise.results import TriggerResult

    masks = masks or [np.zeros((28, 28))] * len(l1)
    return [
        TriggerResult(
            k, "neural-cleanse", "keras", mask, np.zeros((28, 28, 1)), v, 1.0, 1.0, True, 1, 10, 0.1, **fields
        )
        for k, (v, mask) in enumerate(zip(l1, masks))
    ]


def _patch(size: int, row: int = 1, col: int = 1) -> np.ndarray:
    mask = np.zeros((28, 28))
    mask[row : row + size, col : col + size] = 1.0
    return mask


def _scattered(pixels: int, seed: int = 0) -> np.ndarray:
    mask = np.zeros(28 * 28)
    mask[np.random.default_rng(seed).choice(mask.size, pixels, replace=False)] = 1.0
    return mask.reshape(28, 28)


def test_the_report_states_the_l1_below_which_compact_masks_are_flagged():
    from nc_core.detection.report import make_report

    l1 = [9.0, 50.0, 52.0, 55.0, 49.0, 51.0]
    report = make_report(_results(l1, [_patch(3)] + [_scattered(50, k) for k in range(5)]), "m", "d")
    logs = np.log(l1)
    spread = MAD_CONSISTENCY * np.median(np.abs(logs - np.median(logs)))
    assert report.log_spread == pytest.approx(max(spread, 0.1))
    assert report.detection_l1 == pytest.approx(
        min(np.median(l1) * np.exp(-2 * report.log_spread), 0.5 * np.median(l1))
    )
    assert [r.class_id for r in report.rows if r.l1 < report.detection_l1] == report.flagged == [0]
    assert report.summary()["detection_l1"] == report.detection_l1


def test_a_class_that_stands_out_but_is_not_far_smaller_is_not_flagged():
    """Naturally similar classes: the paper's index is above 2, but the mask is 0.6 of the median."""
    l1 = [63.0] + list(np.linspace(88, 125, 42))
    compact = [1.0] * len(l1)
    assert anomaly_indices(l1).indices[0] > 2 and anomaly_indices(l1).flagged == [0]  # the paper's rule
    assert detect(l1, compact).flagged == []
    assert detect([10.0] + l1[1:], compact).flagged == [0]


def test_a_far_smaller_compact_mask_is_flagged_where_naturally_easy_classes_widen_the_mad():
    """Fashion-MNIST-like: bag, shirt and T-shirt need 0.3-0.6 of the median even when clean; the
    raw MAD then hides a target at 0.1 of it, the log scale does not."""
    l1 = [6.0, 18.0, 22.0, 28.0, 34.0, 60.0, 64.0, 66.0, 68.0, 70.0]
    shapes = [0.95, 0.4, 0.35, 0.45, 0.3, 0.3, 0.35, 0.3, 0.3, 0.3]
    assert anomaly_indices(l1).flagged == []  # the paper's rule misses it
    found = detect(l1, shapes)
    assert found.flagged == [0]
    assert found.scores[0] > 1 > max(found.scores[1:])


def test_a_natural_easy_class_is_told_from_a_patch_by_its_shape():
    """Two masks at 0.3-0.36 of the median: the scattered one is a natural feature, the compact one a
    stamped patch; mask size alone cannot separate them."""
    l1 = [20.0, 60.0, 62.0, 64.0, 66.0, 68.0, 70.0, 58.0, 61.0, 65.0]
    natural = detect(l1, [0.35] + [0.3] * 9)
    injected = detect(l1, [0.9] + [0.3] * 9)
    assert natural.flagged == [] and injected.flagged == [0]
    assert injected.score > 1 > natural.score


def test_a_mask_in_two_windows_with_a_long_edge_is_a_natural_feature():
    """A few dense strokes of a sign fit two windows; their edge, several squares' long, says natural."""
    l1 = [20.0, 60.0, 62.0, 64.0, 66.0, 68.0, 70.0, 58.0, 61.0, 65.0]
    shapes = [0.85] + [0.3] * 9
    assert detect(l1, shapes).flagged == [0]  # without the edge, compactness alone is fooled
    assert detect(l1, shapes, boundary=[4.0] + [5.0] * 9).flagged == []
    assert detect(l1, shapes, boundary=[1.8] + [5.0] * 9).flagged == [0]
    relaxed = DetectionRule(max_boundary=5.0)
    assert detect(l1, shapes, relaxed, boundary=[4.0] + [5.0] * 9).flagged == [0]


def test_a_tiny_mask_is_flagged_whatever_its_shape():
    """A blended trigger's target can need a scattered mask of a few pixels: size alone decides."""
    l1 = [1.2, 60.0, 62.0, 64.0, 66.0, 68.0, 70.0, 58.0, 61.0, 65.0]
    assert detect(l1, [0.3] * 10).flagged == [0]
    assert detect(l1, [0.3] * 10, boundary=[6.0] * 10).flagged == [0]


def test_two_targets_are_both_flagged():
    l1 = [5.0, 7.0, 60.0, 62.0, 64.0, 66.0, 68.0, 70.0, 58.0, 61.0]
    assert detect(l1, [1.0, 0.9] + [0.3] * 8).flagged == [0, 1]


def test_classes_within_restart_noise_flag_nothing_even_with_a_tiny_mad():
    """All classes within a few percent: the log spread floor keeps a 0.9 class from standing out."""
    l1 = [45.0, 50.0, 50.5, 50.2, 49.8, 50.1, 49.9, 50.3]
    found = detect(l1, [1.0] * 8)
    assert found.log_spread == pytest.approx(0.1) and found.flagged == []


def test_a_class_without_a_working_trigger_is_never_flagged():
    l1 = [5.0, 60.0, 62.0, 64.0, 66.0, 68.0]
    assert detect(l1, [1.0] * 6, eligible=[False] + [True] * 5).flagged == []


def test_stored_settings_give_the_detection_rule():
    assert DetectionRule.from_settings({}) == DetectionRule()
    rule = DetectionRule.from_settings({"threshold": 3, "max_ratio": 1, "min_compactness": None})
    assert (rule.threshold, rule.max_ratio, rule.min_compactness) == (3.0, 1.0, DetectionRule().min_compactness)


def test_a_compact_mask_far_below_the_median_needs_less_than_two_deviations():
    """A residual net's natural masks spread over 5x (the zoo's ``mnist-patch4-tr``, judged L1s):
    its real target, compact and 3.4x below the median, is only 1.65 log deviations out."""
    l1 = [10.7, 23.9, 24.0, 34.6, 34.6, 39.3, 65.6, 82.4, 121.0, 125.4]
    compact = [1.0] * len(l1)
    found = detect(l1, compact)
    assert 1.41 < found.log_indices[0] < 2  # the bar without the size credit is 2
    assert found.flagged == [0]
    assert detect(l1, [0.3] + compact[1:]).flagged == []  # scattered: size alone is not enough


def test_no_size_credit_for_a_class_that_is_not_far_smaller():
    """Standing out far without being far smaller is what naturally similar classes do."""
    l1 = [23.0, 40.0, 41.0, 42.0, 43.0, 44.0, 45.0, 46.0, 60.0, 90.0, 120.0]
    found = detect(l1, [1.0] * len(l1))
    assert found.log_indices[0] > 2 and found.ratios[0] > 0.5
    assert found.flagged == []
    assert size_credit(found.ratios[0], 0.5) == 1.0


@pytest.mark.parametrize("seed", range(20))
def test_detection_l1_is_the_line_below_which_compact_masks_are_flagged(seed):
    rng = np.random.default_rng(seed)
    l1 = np.exp(rng.normal(4.0, rng.uniform(0.05, 1.2), size=11))  # odd: median(log l) = log median(l)
    l1[0] = np.median(l1) * rng.uniform(0.05, 0.7)
    rule = DetectionRule(max_ratio=float(rng.choice([0.5, 0.6, 1.0])))
    found = detect(l1, [1.0] * l1.size, rule)
    line = detection_l1(float(np.median(l1)), found.log_spread, rule)
    assert found.flagged == [k for k in range(l1.size) if l1[k] < line * (1 - 1e-9)]
