"""scan() and reverse_engineer() on the real MNIST sample: events, cancel, resume, formats."""

import math

import numpy as np
import pytest

from nc_core.detection.report import ScanReport
from nc_core.detection.scan import median_run, scan
from nc_core.errors import InvalidParameterError
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.progress import CancelToken
from nc_core.optimise.runner import reverse_engineer
from nc_core.optimise.steps import STEPS_PER_CALL
from tests.helpers.paths import sample_path

SHORT = CleanseConfig(epochs=4, confirm_runs=0)


@pytest.mark.integration
def test_events_drive_a_progress_bar_to_the_end(mnist_backdoored):
    events = []
    scan(mnist_backdoored.classifier, mnist_backdoored.data, [0, 1], SHORT, on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "class_start" and kinds[-1] == "class_done"
    assert kinds.count("class_done") == 2 and kinds.count("epoch") == 8
    steps = SHORT.steps_for(len(mnist_backdoored.data))
    assert kinds.count("step") == 8 * math.ceil(steps / STEPS_PER_CALL)  # one per compiled chunk
    assert [e.step for e in events if e.kind == "step"][-1] == steps
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    epoch = next(e for e in events if e.kind == "epoch")
    assert set(epoch.metrics) == {"loss", "ce", "l1", "asr", "lam"}


@pytest.mark.integration
def test_cancel_stops_within_an_epoch_and_keeps_finished_classes(mnist_backdoored):
    token = CancelToken()
    seen = []

    def on_event(event):
        seen.append(event)
        if event.kind == "step" and event.target == 2 and event.epoch == 2:
            token.cancel()

    report = scan(
        mnist_backdoored.classifier, mnist_backdoored.data, [0, 1, 2, 3], SHORT, on_event=on_event, cancel=token
    )
    assert report.cancelled
    assert [row.class_id for row in report.rows] == [0, 1]
    cancelled_at = next(e for e in seen if e.kind == "step" and e.target == 2 and e.epoch == 2)
    after_cancel = seen[seen.index(cancelled_at) + 1 :]
    assert after_cancel == []


@pytest.mark.integration
def test_a_resumed_scan_only_runs_the_missing_classes(mnist_backdoored):
    first = scan(mnist_backdoored.classifier, mnist_backdoored.data, [0, 1], SHORT)
    events = []
    resumed = scan(
        mnist_backdoored.classifier, mnist_backdoored.data, [0, 1, 2], SHORT, on_event=events.append, done=first.results
    )
    assert {e.target for e in events} == {2}
    assert [row.class_id for row in resumed.rows] == [0, 1, 2]
    assert resumed.result_for(0) is first.result_for(0)


def test_the_plain_objective_finds_a_working_trigger(mnist_backdoored):
    result = reverse_engineer(
        mnist_backdoored.classifier, mnist_backdoored.data, 3, CleanseConfig(method="plain", epochs=5)
    )
    assert result.method == "plain" and result.mask.shape == (28, 28)
    assert result.asr > 0.9
    assert all(h.lam == 0.0 for h in result.history)


@pytest.mark.integration
def test_the_report_round_trips_through_json(mnist_backdoored):
    report = scan(mnist_backdoored.classifier, mnist_backdoored.data, [0, 7], SHORT, model_name="m")
    again = ScanReport.from_json(report.to_json())
    assert again.summary() == report.summary()
    np.testing.assert_allclose(again.result_for(7).mask, report.result_for(7).mask, rtol=1e-6)
    assert again.result_for(7).history == report.result_for(7).history


@pytest.mark.parametrize("classes", [[10], [-1], []])
def test_classes_out_of_range_are_refused(mnist_backdoored, classes):
    with pytest.raises(InvalidParameterError):
        scan(mnist_backdoored.classifier, mnist_backdoored.data, classes, SHORT)


def test_median_run_keeps_the_median_restart_and_every_l1(mnist_backdoored):
    runs = [
        reverse_engineer(mnist_backdoored.classifier, mnist_backdoored.data, 5, SHORT.replace(seed=s))
        for s in (0, 1, 2)
    ]
    chosen = median_run(runs)
    assert chosen.l1 == sorted(r.l1 for r in runs)[1]
    assert chosen.runs_l1 == [r.l1 for r in runs]
    assert chosen.steps == sum(r.steps for r in runs)


@pytest.mark.integration
def test_a_model_that_takes_minus_one_to_one_finds_the_same_trigger(tmp_path, mnist_backdoored):
    """The pixel range is read from the data and the trigger still lands on the real backdoor."""
    import keras

    from nc_core.loading.inputs import load_inputs

    inner = keras.saving.load_model(sample_path("mnist_backdoored.keras"), safe_mode=True)
    inputs = keras.Input((28, 28, 1))
    wrapped = keras.Model(inputs, inner(keras.layers.Rescaling(127.5, offset=127.5)(inputs)))
    wrapped.save(tmp_path / "signed.keras")
    data = np.load(sample_path("mnist_data.npz"))
    np.savez(tmp_path / "signed.npz", x=data["x"].astype(np.float32) / 127.5 - 1, y=data["y"])

    signed = load_inputs(tmp_path / "signed.keras", tmp_path / "signed.npz")
    assert signed.data.pixel_range.label == "-1-1"
    assert signed.clean_accuracy == pytest.approx(mnist_backdoored.clean_accuracy, abs=0.01)
    report = scan(signed.classifier, signed.data, [0, 1, 7], SHORT.replace(epochs=12))
    assert min(report.rows, key=lambda r: r.l1).class_id == 7
