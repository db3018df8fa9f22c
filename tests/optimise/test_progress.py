"""A scan's overall progress: a share of its planned steps that never goes back."""

from nc_core.optimise.progress import ProgressEvent, ScanProgress


def event(kind: str, epoch: int, step: int, steps: int = 10) -> ProgressEvent:
    return ProgressEvent(kind, 0, 0, 1, epoch, 60, step, steps, 0.0)


def drive(callback, epochs: int, first: int = 1, stop_at: int | None = None) -> None:
    callback(event("class_start", first - 1, 0))
    last = stop_at or epochs
    for epoch in range(first, last + 1):
        for step in range(1, 11):
            callback(event("step", epoch, step))
        callback(event("epoch", epoch, 10))
    callback(event("class_done", last, 10))


def test_a_growing_plan_holds_the_bar_and_early_stops_move_it_forward():
    shown = []
    progress = ScanProgress(lambda e: shown.append(e.fraction), steps_per_epoch=10)
    progress.plan([10] * 4 + [60])  # a screen of 4 classes, one full run expected after it
    for _ in range(4):
        drive(progress.run(10), 10)
    assert shown[-1] == 400 / 1000
    progress.replan([50, 60, 60])  # three classes to run in full (one continued): more than planned
    drive(progress.run(60 - 10, first_epoch=11), 60, first=11, stop_at=30)  # continued, stops early
    for _ in range(2):
        drive(progress.run(60), 60, stop_at=20)
    assert shown == sorted(shown)
    assert shown[-1] == 1.0


def test_concurrent_runs_each_count_their_own_steps():
    shown = []
    progress = ScanProgress(lambda e: shown.append((e.class_index, e.num_classes, e.fraction)), steps_per_epoch=10)
    progress.plan([5, 5])
    first, second = progress.run(5), progress.run(5)
    for callback in (first, second):
        callback(event("class_start", 0, 0))
    for epoch in range(1, 6):
        for step in range(1, 11):
            first(event("step", epoch, step))
            second(event("step", epoch, step))
    assert shown[-1] == (1, 2, 1.0)
    assert {index for index, _, _ in shown} == {0, 1}
    fractions = [f for _, _, f in shown]
    assert fractions == sorted(fractions) and 0.49 < fractions[len(fractions) // 2] < 0.51
