"""The probe of very many classes: which classes are screened, how the rule measures its median on
a sample, and whole scans through it on the real MNIST twins (with the probe's sizes made small
enough for 10 classes)."""

import math
from dataclasses import replace

import numpy as np
import pytest

from nc_core.detection import probe
from nc_core.detection.detect import detect
from nc_core.detection.probe import easiest, median_sample, probe_epochs, promoted
from nc_core.detection.report import make_report
from nc_core.detection.scan import scan
from nc_core.optimise.config import CleanseConfig
from tests.helpers.results import sized_result


def test_the_sample_is_random_but_the_same_for_the_same_seed_and_classes():
    first = median_sample(range(1000), seed=0)
    assert first == median_sample(range(1000), seed=0) and len(first) == probe.MEDIAN_SAMPLE
    assert first != median_sample(range(1000), seed=1)
    assert first != list(range(probe.MEDIAN_SAMPLE)), "not simply the first classes"


def test_the_easiest_classes_outside_the_sample_are_screened_besides_it():
    losses = {k: 2.0 + k / 1000 for k in range(300)}
    sample = median_sample(losses, seed=3)
    outside = [k for k in range(300) if k not in sample]
    losses[outside[-1]] = 0.1  # the last class is by far the easiest
    chosen = easiest(losses, sample)
    assert outside[-1] in chosen and len(chosen) == probe.PROBE_CANDIDATES
    assert not set(chosen) & set(sample)
    assert chosen == sorted(outside[-1:] + outside[: probe.PROBE_CANDIDATES - 1])
    assert promoted(losses, seed=3) == (sample, chosen)


def test_only_scans_of_many_classes_are_probed():
    config = CleanseConfig()
    assert probe_epochs(config, probe.PROBE_MIN_CLASSES, screen=10) == config.probe_epochs
    assert probe_epochs(config, probe.PROBE_MIN_CLASSES - 1, screen=10) == 0
    assert probe_epochs(config, 1000, screen=0) == 0, "no screen, no probe"
    assert probe_epochs(config.replace(probe_epochs=0), 1000, screen=10) == 0


def test_the_rule_measures_its_median_on_the_sample_and_never_judges_a_class_only_probed():
    l1 = [10.0, 50.0, 52.0, 55.0, 49.0, 5.0, math.nan]
    shapes = [1.0] * len(l1)
    sample = [True, True, True, True, True, False, False]
    found = detect(l1, shapes, reference=sample)
    assert found.median == np.median(l1[:5]), "the easy class 5 outside the sample does not pull the median down"
    assert found.flagged == [0, 5] and math.isnan(found.scores[6])
    assert detect(l1[:6], shapes[:6]).median == np.median(l1[:6])


def test_a_report_shows_probed_classes_without_judging_them():
    results = [sized_result(k, 100.0 + k) for k in range(8)] + [sized_result(8, 10.0, compact=True)]
    probed = replace(sized_result(9, 3.0, compact=True), probe_only=True, median_sample=False, full_schedule=False)
    report = make_report(results + [probed], "m", "d")
    assert report.probed == [9] and 9 not in report.screened
    assert math.isnan(report.rows[9].judged_l1) and not report.rows[9].flagged
    assert report.flagged == [8] and report.median == np.median([r.l1 for r in results])


@pytest.fixture
def small_probe(monkeypatch):
    """The probe's sizes for 10 classes: probe all, sample 4, screen the 2 easiest besides."""
    monkeypatch.setattr(probe, "MEDIAN_SAMPLE", 4)
    monkeypatch.setattr(probe, "PROBE_CANDIDATES", 2)
    monkeypatch.setattr(probe, "PROBE_MIN_CLASSES", 8)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("twin", "verdict", "flagged"), [("mnist_backdoored", "backdoored", [7]), ("mnist_clean", "clean", [])]
)
def test_a_probed_scan_finds_the_backdoor_and_clears_the_clean_twin(twin, verdict, flagged, small_probe, request):
    inputs = request.getfixturevalue(twin)
    phases = set()
    report = scan(
        inputs.classifier, inputs.data, config=CleanseConfig(threads=1), on_event=lambda e: phases.add(e.kind)
    )
    assert report.verdict == verdict and report.flagged == flagged, report.verdict_reason
    assert len(report.probed) == 10 - 6, "four classes neither in the sample nor among the easiest"
    probed = [r for r in report.results if r.probe_only]
    assert all(r.epochs == CleanseConfig().probe_epochs for r in probed)
    assert sum(r.median_sample for r in report.results) == 4
    if flagged:
        assert not report.result_for(7).probe_only, "the target is screened: in the sample or among the easiest"
    assert len(report.margin.sample) == 4, "the max-margin test fits its null to a sample too"
    assert report.margin.flagged == flagged
