"""The screen: which classes get the full schedule, how screened L1s are judged, and continuing a
screened run exactly where it stopped."""

import math

import numpy as np
import pytest

from nc_core.detection.detect import DetectionRule
from nc_core.detection.report import make_report
from nc_core.detection.screen import (
    REFERENCE_CLASSES,
    SCREEN_SCORE,
    budget_scale,
    full_budget_l1,
    pessimistic_scores,
    plan_full_runs,
)
from nc_core.detection.shape import compactness
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.engine import KerasEngine
from nc_core.optimise.schedule import reverse_target
from tests.helpers.results import sized_result

SCREENED = [sized_result(0, 10, compact=True)] + [sized_result(k, 100 + 4 * k) for k in range(1, 10)]


def test_the_smallest_class_and_the_classes_nearest_the_median_get_the_full_schedule():
    candidates, references = plan_full_runs(SCREENED, DetectionRule())
    l1 = [r.l1 for r in SCREENED]
    scores = pessimistic_scores(l1, [compactness(r.mask) for r in SCREENED], [True] * len(l1), DetectionRule())
    assert 0 in candidates
    assert candidates == [k for k, score in enumerate(scores) if score >= SCREEN_SCORE]
    assert len(references) == REFERENCE_CLASSES and not set(references) & set(candidates)
    median = np.median(l1)
    farthest_chosen = max(abs(math.log(l1[k] / median)) for k in references)
    assert all(
        abs(math.log(l1[k] / median)) >= farthest_chosen for k in range(len(l1)) if k not in references + candidates
    )


def test_a_screened_class_that_could_still_cross_the_line_is_run_in_full():
    typical = [sized_result(k, 100.0) for k in range(1, 10)]
    borderline = sized_result(0, 62.0, compact=True)  # 0.62 of the median: not flagged, yet not far off
    assert plan_full_runs([borderline, *typical], DetectionRule())[0] == [0]
    far = sized_result(0, 95.0, compact=True)
    assert plan_full_runs([far, *typical], DetectionRule())[0] == []


def test_screened_l1s_are_judged_on_the_full_schedule_scale_measured_on_the_references():
    references = [sized_result(k, 60, full=True, screen_l1=120, reference=True) for k in (4, 5, 6)]
    results = [r for r in SCREENED if r.target not in (4, 5, 6)] + references
    assert budget_scale(results) == 0.5
    screened = next(r for r in results if r.target == 9)
    assert full_budget_l1(screened, 0.5) == screened.l1 / 2
    report = make_report(results, "m", "d")
    assert report.budget_scale == 0.5
    assert report.rows[9].full_budget_l1 == screened.l1 / 2 and not report.rows[9].full_schedule
    assert report.median == np.median([full_budget_l1(r, 0.5) for r in results])
    assert 9 in report.screened and 9 not in report.unconverged
    candidates, references = plan_full_runs(results, DetectionRule())
    assert 0 in candidates and references == [], "references are chosen once"


def test_a_screened_class_that_another_rule_would_have_run_in_full_makes_the_verdict_inconclusive():
    results = [sized_result(0, 145)] + [sized_result(k, 140 + 4 * k, full=True, screen_l1=200) for k in range(1, 10)]
    default = make_report(results, "m", "d")
    assert default.verdict == "clean" and default.unsettled == []
    lenient = make_report(results, "m", "d", rule=DetectionRule(threshold=0.5, max_ratio=0.85, min_compactness=0.4))
    assert lenient.rows[0].score < 1 and not lenient.flagged
    assert lenient.unsettled == [0] and lenient.verdict == "inconclusive"


def test_a_run_continued_from_its_checkpoint_is_the_run_that_never_stopped(mnist_backdoored):
    inputs = mnist_backdoored
    engine = KerasEngine(inputs.classifier, inputs.data.x, inputs.data.pixel_range)
    config = CleanseConfig(epochs=9)
    straight = reverse_target(engine, 7, config, len(inputs.data))
    saved = []
    screen = reverse_target(engine, 7, config.replace(epochs=4), len(inputs.data), on_checkpoint=saved.append)
    reverse_target(engine, 3, config.replace(epochs=2), len(inputs.data))  # another class in between
    continued = reverse_target(engine, 7, config, len(inputs.data), resume=saved[0])
    assert screen.history == continued.history[:4]
    assert continued.history == straight.history
    assert continued.l1 == straight.l1 and continued.steps == straight.steps
    np.testing.assert_array_equal(continued.mask, straight.mask)


def test_one_slot_of_the_batched_engine_takes_the_steps_of_the_one_class_engine(mnist_backdoored):
    from nc_core.optimise.batched import BatchedEngine

    inputs = mnist_backdoored
    single = KerasEngine(inputs.classifier, inputs.data.x, inputs.data.pixel_range)
    batched = BatchedEngine(inputs.classifier, inputs.data.x, inputs.data.pixel_range, slots=3)
    single.start_target(7, seed=7)
    batched.start_slot(1, target=7, seed=7)
    batched.start_slot(0, target=2, seed=2)  # a neighbour with its own penalty must not disturb it
    batched.reseed(7)  # the same mini-batches as the one-class engine
    for lam in (0.0, 0.0, 1e-3, 1e-2):
        alone = single.run_epoch(lam, 5)
        together = batched.run_epoch([0.5, lam, 0.0], 5)[1]
        assert together.l1 == pytest.approx(alone.l1, rel=1e-4)
        assert together.ce == pytest.approx(alone.ce, rel=1e-3, abs=1e-5)
    np.testing.assert_allclose(batched.trigger(1)[0], single.current_trigger()[0], atol=1e-4)
