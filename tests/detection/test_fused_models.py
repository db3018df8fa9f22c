"""The fused verdict on real backdoors Neural Cleanse's mask cannot express (tests/models/README.md):
the real optimisation of both methods, product defaults, on two small zoo models; and the repair
of a finding only the max-margin test makes."""

import pytest

from nc_core.detection.fusion import MAX_MARGIN
from nc_core.detection.scan import scan
from nc_core.loading.inputs import load_inputs
from tests.helpers.paths import TEST_MODELS

pytestmark = pytest.mark.slow


def scanned(model: str, data: str):
    inputs = load_inputs(TEST_MODELS / model, TEST_MODELS / data)
    return inputs, scan(inputs.classifier, inputs.data, model_name=model)


@pytest.fixture(scope="module")
def filter_scan():
    return scanned("mnist-filter-cnn.keras", "mnist_0-255.npz")


def test_a_filter_backdoor_neural_cleanse_misses_is_flagged_by_the_max_margin_test(filter_scan):
    _, report = filter_scan
    assert report.nc_flagged == [], "Neural Cleanse alone misses the filter"
    assert report.verdict == "backdoored" and report.flagged == [4]
    assert report.flagged_by == {"4": [MAX_MARGIN]}
    assert report.headline.startswith("Backdoored: class 4 flagged (max-margin)")
    summary = report.summary()
    assert summary["methods"][MAX_MARGIN]["flagged"] == [4]


def test_the_repair_unlearns_a_blend_for_the_max_margin_finding(filter_scan):
    from nc_core.loading.models import load_model
    from nc_core.repair import repair
    from nc_core.repair.config import RepairConfig

    inputs, report = filter_scan
    result = repair(
        load_model(TEST_MODELS / "mnist-filter-cnn.keras"),
        inputs.data,
        report,
        RepairConfig(max_rounds=1),
        outputs_probabilities=inputs.info.outputs_probabilities,
    )
    assert result.targets == [4]
    assert result.before.reversed_asr[4] > 0.9 > 0.2 > result.after.reversed_asr[4]
    assert result.after.clean_accuracy > result.before.clean_accuracy - 0.05


def test_a_far_smaller_scattered_mask_does_not_read_clean():
    _, report = scanned("fmnist-filter-cnn.keras", "fmnist_0-255.npz")
    assert 2 in report.suspects, [(r.class_id, round(r.ratio, 2), round(r.compactness, 2)) for r in report.rows]
    assert report.verdict != "clean"
