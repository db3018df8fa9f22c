"""The fused verdict on real backdoors Neural Cleanse's mask cannot express (tests/models/README.md):
the real optimisation of both methods, product defaults, on two small zoo models."""
from pathlib import Path

import pytest

from nc_core.detection.fusion import MAX_MARGIN
from nc_core.detection.scan import scan
from nc_core.loading.inputs import load_inputs

pytestmark = pytest.mark.slow
MODELS = Path(__file__).parent / "models"


def scanned(model: str, data: str):
    inputs = load_inputs(MODELS / model, MODELS / data)
    return scan(inputs.classifier, inputs.data, model_name=model)


def test_a_filter_backdoor_neural_cleanse_misses_is_flagged_by_the_max_margin_test():
    report = scanned("mnist-filter-cnn.keras", "mnist_0-255.npz")
    assert report.nc_flagged == [], "Neural Cleanse alone misses the filter"
    assert report.verdict == "backdoored" and report.flagged == [4]
    assert report.flagged_by == {"4": [MAX_MARGIN]}
    assert report.headline.startswith("Backdoored: class 4 flagged (max-margin)")
    summary = report.summary()
    assert summary["methods"][MAX_MARGIN]["flagged"] == [4]


def test_a_far_smaller_scattered_mask_does_not_read_clean():
    report = scanned("fmnist-filter-cnn.keras", "fmnist_0-255.npz")
    assert 2 in report.suspects, [(r.class_id, round(r.ratio, 2), round(r.compactness, 2)) for r in report.rows]
    assert report.verdict != "clean"
