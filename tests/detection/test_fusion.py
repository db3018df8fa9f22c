"""The fused verdict (nc_core.detection.fusion, made by report.make_report): which method flags
what, suspects that never read "clean", and the report's contract for both methods. The masks are
drawn here so each case is exact; the real optimisation is tested in test_margin and
test_full_scans."""

import json

import numpy as np

from nc_core.detection.fusion import MAX_MARGIN, NEURAL_CLEANSE, fuse
from nc_core.detection.margin import MarginResult
from nc_core.detection.report import ScanReport, make_report
from nc_core.optimise.results import TriggerResult

SIDE = 28


def square(size: int, row: int = 2, col: int = 2) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), np.float32)
    mask[row : row + size, col : col + size] = 1.0
    return mask


def scattered(pixels: int, seed: int) -> np.ndarray:
    """A mask of ``pixels`` single pixels strewn over the image: not compact, a long edge."""
    mask = np.zeros(SIDE * SIDE, np.float32)
    mask[np.random.default_rng(seed).choice(SIDE * SIDE, pixels, replace=False)] = 1.0
    return mask.reshape(SIDE, SIDE)


def result(target: int, mask: np.ndarray) -> TriggerResult:
    return TriggerResult(
        target=target,
        method="neural-cleanse",
        engine="keras",
        mask=mask,
        pattern=np.ones((SIDE, SIDE, 1), np.float32),
        l1=float(mask.sum()),
        asr=1.0,
        train_asr=1.0,
        reached_threshold=True,
        epochs=40,
        steps=400,
        seconds=1.0,
        stopped_early=True,
    )


def natural(k: int) -> TriggerResult:
    """A natural class: a large scattered mask around 60-70 pixels."""
    return result(k, scattered(60 + 2 * k, seed=k))


def margins(values: list[float]) -> MarginResult:
    return MarginResult(margins=values, p_values=[1.0] * len(values), scores=[0.0] * len(values), flagged=[])


FLAT = [50.0, 52.0, 49.0, 51.0, 53.0, 48.0, 50.5, 51.5, 49.5, 52.5]


def test_fuse_names_each_method_and_keeps_suspects_apart():
    fusion = fuse([0, 1, 2, 3], nc_flagged=[1], size_outliers=[1, 2], margin_flagged=[1, 3])
    assert fusion.flagged == [1, 3]
    assert fusion.methods_for(1) == [NEURAL_CLEANSE, MAX_MARGIN] and fusion.methods_for(3) == [MAX_MARGIN]
    assert fusion.suspects == [2]


def test_a_class_only_the_max_margin_test_flags_makes_the_model_backdoored():
    """A blend: every mask is natural, but the model answers class 4 abnormally hard."""
    values = FLAT.copy()
    values[4] = 300.0
    report = make_report([natural(k) for k in range(10)], "blend.keras", "d.npz", margin=margins(values))
    assert report.nc_flagged == [] and report.margin_flagged == [4]
    assert report.verdict == "backdoored" and report.flagged == [4]
    assert report.flagged_by == {"4": [MAX_MARGIN]}
    assert report.headline.startswith("Backdoored: class 4 flagged (max-margin)")
    row = report.rows[4]
    assert row.flagged and not row.nc_flagged and row.margin_p < 0.05 and row.margin_ratio > 5
    assert row.reason.startswith("max-margin:")


def test_a_size_outlier_with_a_scattered_mask_is_never_called_clean():
    """The checkerboard stamped at a random place: a tiny share of the median, but in pieces."""
    results = [natural(k) for k in range(10)]
    results[6] = result(6, scattered(16, seed=99))  # a quarter of the median, scattered
    report = make_report(results, "roaming.keras", "d.npz", margin=margins(FLAT))
    row = report.rows[6]
    assert row.size_outlier and not row.nc_flagged
    assert report.suspects == [6]
    assert report.verdict == "inconclusive"
    assert "never called clean" in report.verdict_reason
    assert report.headline.startswith("Inconclusive: class 6")


def test_the_max_margin_test_confirms_a_suspect():
    results = [natural(k) for k in range(10)]
    results[6] = result(6, scattered(16, seed=99))
    values = FLAT.copy()
    values[6] = 250.0
    report = make_report(results, "roaming.keras", "d.npz", margin=margins(values))
    assert report.verdict == "backdoored" and report.flagged == [6] and report.suspects == []
    assert report.flagged_by == {"6": [MAX_MARGIN]}


def test_a_compact_small_patch_is_flagged_by_neural_cleanse_alone():
    results = [natural(k) for k in range(10)]
    results[3] = result(3, square(3))
    report = make_report(results, "patch.keras", "d.npz", margin=margins(FLAT))
    assert report.verdict == "backdoored" and report.flagged == [3]
    assert report.flagged_by == {"3": [NEURAL_CLEANSE]}
    assert report.margin_flagged == []


def test_clean_needs_both_methods_silent():
    report = make_report([natural(k) for k in range(10)], "clean.keras", "d.npz", margin=margins(FLAT))
    assert report.verdict == "clean" and report.flagged == [] and report.suspects == []
    assert "none answers abnormally hard" in report.headline


def test_the_json_contract_carries_both_methods_and_round_trips():
    values = FLAT.copy()
    values[4] = 300.0
    report = make_report([natural(k) for k in range(10)], "blend.keras", "d.npz", margin=margins(values))
    summary = report.summary()
    assert summary["verdict"] == "backdoored" and summary["flagged"] == [4]
    assert set(summary["methods"]) == {NEURAL_CLEANSE, MAX_MARGIN}
    assert summary["methods"][MAX_MARGIN]["flagged"] == [4] and summary["methods"][NEURAL_CLEANSE]["flagged"] == []
    assert summary["flagged_by"] == {"4": [MAX_MARGIN]}
    assert {"margin", "margin_p", "margin_ratio", "margin_score", "flagged_by", "reason"} <= set(summary["classes"][0])
    json.dumps(summary)
    again = ScanReport.from_json(report.to_json())
    assert again.verdict == "backdoored" and again.flagged == [4] and again.margin.margins == values
    rejudged = make_report(again.results, "blend.keras", "d.npz", margin=again.margin)
    assert rejudged.summary()["flagged_by"] == summary["flagged_by"]


def test_a_report_from_before_the_fusion_keeps_its_verdict():
    results = [natural(k) for k in range(10)]
    results[3] = result(3, square(3))
    payload = json.loads(make_report(results, "old.keras", "d.npz").to_json())
    for key in ("nc_flagged", "nc_score", "margin", "margin_p", "suspects", "flagged_by"):
        payload.pop(key)
    old = ScanReport.from_dict(payload)
    assert old.verdict == "backdoored" and old.flagged == [3] and old.nc_flagged == [3]
