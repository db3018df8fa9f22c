"""Classes side by side on threads: the same results as one at a time, callbacks on one thread."""

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from nc_core.detection.scan import scan
from nc_core.errors import RunCancelled
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.progress import CancelToken, ProgressEvent
from nc_core.optimise.threads import auto_threads, run_on_threads, usable_cores

SCHEDULE = CleanseConfig(epochs=12, screen_epochs=4, confirm_runs=1)


@pytest.mark.integration
def test_two_threads_find_exactly_what_one_finds(mnist_backdoored):
    """The screen's checkpoints continue on whichever engine is free, restarts run side by side:
    every class still follows its own trajectory, step for step."""
    alone = scan(mnist_backdoored.classifier, mnist_backdoored.data, config=SCHEDULE.replace(threads=1))
    events = []
    side_by_side = scan(
        mnist_backdoored.classifier, mnist_backdoored.data, config=SCHEDULE.replace(threads=2), on_event=events.append
    )
    assert side_by_side.screened and side_by_side.screened == alone.screened
    for one, two in zip(alone.rows, side_by_side.rows):
        assert (one.class_id, one.steps, one.full_schedule) == (two.class_id, two.steps, two.full_schedule)
        assert two.l1 == pytest.approx(one.l1, rel=1e-4)
    assert (side_by_side.verdict, side_by_side.flagged) == (alone.verdict, alone.flagged)
    overall = [e.overall for e in events]
    assert overall == sorted(overall) and overall[-1] == 1.0, "the bar never goes back"
    assert {e.target for e in events if e.kind == "class_done"} == set(range(10))


@pytest.mark.integration
def test_a_cancel_stops_every_thread_and_keeps_finished_classes(mnist_backdoored):
    token = CancelToken()
    finished = []

    def on_event(event):
        if event.kind == "class_done":
            finished.append(event.target)
            if len(finished) == 2:
                token.cancel()

    report = scan(
        mnist_backdoored.classifier,
        mnist_backdoored.data,
        [0, 1, 2, 3, 4],
        CleanseConfig(epochs=6, confirm_runs=0, threads=2),
        on_event=on_event,
        cancel=token,
    )
    assert report.cancelled and report.verdict == "inconclusive"
    assert set(finished[:2]) <= {row.class_id for row in report.rows} < {0, 1, 2, 3, 4}


@dataclass
class FakeJob:
    target: int
    seconds: float = 0.01
    fail: bool = False


def fake_run(engine, job, on_event, cancel):
    """Sleeps in small slices (as steps do), checking the cancel token, emitting a step event."""
    for step in range(1, 4):
        time.sleep(job.seconds / 3)
        on_event(ProgressEvent("step", job.target, 0, 1, 1, 1, step, 3, 0.0, trigger=lambda: (engine, job.target)))
        if cancel.cancelled:
            raise RunCancelled("cancelled")
    if job.fail:
        raise ValueError(f"class {job.target} broke")
    return f"{engine}:{job.target}", None


def test_every_callback_runs_on_the_calling_thread_and_events_carry_their_own_trigger():
    caller, seen, done = threading.get_ident(), [], []

    def events(job):
        seen.append(("start", job.target, threading.get_ident()))
        return lambda event: seen.append(("event", event.target, threading.get_ident(), event.trigger()))

    run_on_threads(
        ["a", "b"],
        [FakeJob(t) for t in range(6)],
        fake_run,
        events,
        lambda job, result, checkpoint: done.append((job.target, result, threading.get_ident())),
    )
    assert {entry[2] for entry in seen} == {caller} and {entry[2] for entry in done} == {caller}
    assert sorted(target for target, _, _ in done) == list(range(6))
    assert all(event[3][1] == event[1] for event in seen if event[0] == "event")
    assert {result.split(":")[0] for _, result, _ in done} == {"a", "b"}, "both engines worked"


def test_the_first_error_stops_the_others_and_is_raised():
    done = []
    jobs = [FakeJob(0, 0.3), FakeJob(1, 0.01, fail=True), FakeJob(2), FakeJob(3)]
    with pytest.raises(ValueError, match="class 1 broke"):
        run_on_threads(
            ["a", "b"],
            jobs,
            fake_run,
            lambda job: lambda event: None,
            lambda job, result, checkpoint: done.append(job.target),
        )
    assert 2 not in done and 3 not in done, "no new class starts after an error"


def test_an_error_in_a_callback_stops_the_threads_too():
    def events(job):
        def report(event):
            raise KeyError("the store is gone")

        return report

    with pytest.raises(KeyError):
        run_on_threads(["a", "b"], [FakeJob(t, 0.2) for t in range(4)], fake_run, events, lambda *a: None)


def test_a_cancel_before_every_job_started_raises_run_cancelled():
    token = CancelToken()
    done = []

    def on_done(job, result, checkpoint):
        done.append(job.target)
        token.cancel()

    with pytest.raises(RunCancelled):
        run_on_threads(["a"], [FakeJob(t) for t in range(5)], fake_run, lambda job: lambda event: None, on_done, token)
    assert done == [0]


def test_auto_threads_is_one_per_core_up_to_four():
    assert auto_threads(3) == 3
    assert auto_threads(0) == min(usable_cores(), 4) >= 1
    with pytest.raises(Exception, match="Threads"):
        CleanseConfig(threads=-1).validate(100)
    assert np.isfinite(usable_cores())


class RecordingStore:
    """Just the two writes the recorder makes."""

    def __init__(self):
        self.progress, self.triggers = [], []

    def update_progress(self, run_id, progress):
        self.progress.append(progress)

    def save_live_trigger(self, run_id, target, epoch, mask, pattern):
        self.triggers.append(target)


def test_the_live_view_follows_one_class_while_two_run(monkeypatch):
    """Interleaved events of classes 3 and 4: the stored class, curves and mask stay class 3's
    until it finishes, then move to class 4; the overall fraction follows every event."""
    from nc_core.runs import worker

    monkeypatch.setattr(worker, "PROGRESS_INTERVAL", 0.0)
    monkeypatch.setattr(worker, "LIVE_TRIGGER_INTERVAL", 0.0)
    store = RecordingStore()
    record = worker._Recorder(store, "run")

    def event(kind, target, epoch, overall):
        metrics = {"l1": float(target), "asr": 1.0} if kind == "epoch" else {}
        return ProgressEvent(
            kind,
            target,
            target,
            5,
            epoch,
            10,
            10,
            10,
            0.0,
            metrics,
            overall=overall,
            trigger=(lambda: (None, None)) if kind == "epoch" else None,
        )

    for e in [
        event("class_start", 3, 0, 0.1),
        event("class_start", 4, 0, 0.1),
        event("epoch", 3, 1, 0.2),
        event("epoch", 4, 1, 0.3),
        event("epoch", 3, 2, 0.4),
        event("epoch", 4, 2, 0.5),
        event("class_done", 3, 2, 0.6),
        event("epoch", 4, 3, 0.7),
    ]:
        record(e)
    *before, after = store.progress
    assert {p["target"] for p in before} == {3} and after["target"] == 4
    assert [c["l1"] for c in before[-1]["curves"]] == [3.0, 3.0], "class 3's curves only"
    assert [c["epoch"] for c in after["curves"]] == [1, 2, 3]
    assert store.triggers == [3, 3, 4]
    assert [p["fraction"] for p in store.progress] == sorted(p["fraction"] for p in store.progress)


def test_an_error_while_starting_a_job_waits_for_the_running_threads_then_raises():
    running = []

    def slow(engine, job, on_event, cancel):
        running.append(job.target)
        time.sleep(0.2)
        if cancel.cancelled:
            raise RunCancelled("stopped")
        return "done", None

    def events(job):
        if job.target == 1:
            raise RuntimeError("no progress for class 1")
        return lambda event: None

    with pytest.raises(RuntimeError, match="class 1"):
        run_on_threads(["a", "b"], [FakeJob(0), FakeJob(1), FakeJob(2)], slow, events, lambda *a: None)
    assert running == [0], "class 0 ran and was waited for; nothing started after the error"
