"""One model's classes as Ray tasks on a local cluster: what a scan in this process finds, a worker
killed mid-scan, a cancel, and the settings a Ray scan refuses before starting anything."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("ray")

from nc_core.detection.scan import scan  # noqa: E402
from nc_core.errors import InvalidParameterError  # noqa: E402
from nc_core.optimise.cluster import RayCluster  # noqa: E402
from nc_core.optimise.config import CleanseConfig  # noqa: E402
from nc_core.optimise.progress import CancelToken  # noqa: E402

#: Screened classes continue from checkpoints made on other workers; restarts confirm class 7.
SCHEDULE = CleanseConfig(epochs=12, screen_epochs=4, margin_steps=0)
#: Every class runs all its epochs (a few seconds each), so a worker is killed or cancelled mid-class.
LONG_CLASSES = CleanseConfig(epochs=40, early_stop=False, screen_epochs=0, confirm_runs=0, margin_steps=0)
TWO_WORKERS = RayCluster(workers=2)
#: A short max-margin test, which a Ray scan runs on the cluster beside the classes.
WITH_MARGIN = CleanseConfig(epochs=4, screen_epochs=0, confirm_runs=0, margin_steps=60)


@pytest.mark.integration
def test_a_ray_scan_finds_what_a_scan_in_this_process_finds(mnist_backdoored):
    """Each class runs the same engine, config and seed on a worker as here: the L1s agree to the
    last bit on this machine (asserted to 1e-9), the screen's checkpoints continued on any worker."""
    here = scan(mnist_backdoored.classifier, mnist_backdoored.data, config=SCHEDULE)
    events = []
    on_ray = scan(
        mnist_backdoored.classifier, mnist_backdoored.data, config=SCHEDULE, on_event=events.append, ray=TWO_WORKERS
    )
    assert (on_ray.verdict, on_ray.flagged) == (here.verdict, here.flagged) == ("backdoored", [7])
    assert on_ray.screened and on_ray.screened == here.screened
    for one, two in zip(here.rows, on_ray.rows):
        assert (one.class_id, one.steps, one.full_schedule) == (two.class_id, two.steps, two.full_schedule)
        assert two.l1 == pytest.approx(one.l1, rel=1e-9, abs=0)
    assert sorted(on_ray.result_for(7).runs_l1) == pytest.approx(sorted(here.result_for(7).runs_l1), rel=1e-9)
    assert on_ray.device == "a local Ray cluster of 2 workers" and on_ray.ran_on.endswith("of 2 workers")
    overall = [e.overall for e in events]
    assert overall == sorted(overall) and overall[-1] == 1.0, "the bar moves as classes finish, never back"
    assert {e.target for e in events if e.kind == "class_done"} == set(range(10))


@pytest.mark.integration
def test_a_ray_scan_runs_the_max_margin_test_on_a_worker_and_finds_the_same_margins(mnist_backdoored, monkeypatch):
    here = scan(mnist_backdoored.classifier, mnist_backdoored.data, config=WITH_MARGIN)

    def not_in_the_driver(*args, **kwargs):
        raise AssertionError("the max-margin test ran in the driver")

    monkeypatch.setattr("nc_core.detection.scan.max_margin_scan", not_in_the_driver)  # a worker imports its own
    received = []
    on_ray = scan(
        mnist_backdoored.classifier,
        mnist_backdoored.data,
        config=WITH_MARGIN,
        on_margin=received.append,
        ray=TWO_WORKERS,
    )
    assert len(received) == 1 and received[0] is on_ray.margin
    assert on_ray.margin.steps == here.margin.steps > 0
    assert on_ray.margin.margins == pytest.approx(here.margin.margins, rel=1e-4)  # one thread there, two here
    assert on_ray.margin.flagged == here.margin.flagged
    assert (on_ray.verdict, on_ray.flagged) == (here.verdict, here.flagged)


def _our_ray_tasks() -> list[int]:
    """Processes of this test's own Ray cluster (descendants of this process) running a class now."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            running = (entry / "cmdline").read_bytes().startswith(b"ray::_reverse_class")
        except OSError:
            continue
        if running and _descends_from_us(int(entry.name)):
            found.append(int(entry.name))
    return found


def _descends_from_us(pid: int) -> bool:
    while pid > 1:
        if pid == os.getpid():
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker process through /proc")
def test_a_ray_worker_killed_mid_scan_is_retried_and_the_scan_keeps_every_class(mnist_backdoored):
    killed = []

    def kill_a_worker_once(result) -> None:  # the first class is done, others are under way
        if not killed:
            victims = _our_ray_tasks()
            assert victims, "a worker is running a class"
            os.kill(victims[0], signal.SIGKILL)
            killed.append(victims[0])

    report = scan(
        mnist_backdoored.classifier,
        mnist_backdoored.data,
        config=LONG_CLASSES,
        on_result=kill_a_worker_once,
        ray=TWO_WORKERS,
    )
    assert killed and not report.cancelled
    assert sorted(row.class_id for row in report.rows) == list(range(10))
    assert all(result.epochs == LONG_CLASSES.epochs for result in report.results), "every class ran to its end"


@pytest.mark.integration
def test_a_cancelled_ray_scan_keeps_its_finished_classes(mnist_backdoored):
    token = CancelToken()
    finished = []

    def cancel_after_the_first(result) -> None:
        finished.append(result.target)
        token.cancel()

    report = scan(
        mnist_backdoored.classifier,
        mnist_backdoored.data,
        config=LONG_CLASSES,
        cancel=token,
        on_result=cancel_after_the_first,
        ray=TWO_WORKERS,
    )
    assert report.cancelled and report.verdict == "inconclusive"
    kept = {row.class_id for row in report.rows}
    assert set(finished) == kept and 1 <= len(kept) < 10


@pytest.mark.integration
@pytest.mark.parametrize(
    ("changes", "refusal"),
    [({"engine": "legacy"}, "keras engine"), ({"classes_per_step": 4}, "one class per worker")],
)
def test_a_ray_scan_refuses_engines_that_run_here_only_before_starting_ray(mnist_backdoored, changes, refusal):
    import ray

    with pytest.raises(InvalidParameterError, match=refusal):
        scan(mnist_backdoored.classifier, mnist_backdoored.data, [7], CleanseConfig(**changes), ray="local:1")
    assert not ray.is_initialized()


@pytest.mark.integration
def test_a_model_the_workers_safe_loader_refuses_is_answered_with_its_sentence(tmp_path):
    """Workers load what they are shipped through the project's safe loader: an in-memory model with
    a Lambda is refused there, with the loader's sentence, and its code never runs on a worker."""
    import numpy as np

    from nc_core.errors import UnsafeModelError
    from nc_core.loading.data import Dataset
    from nc_core.loading.pixels import PixelRange
    from tests.helpers.tiny_models import SHAPE, lambda_model

    marker = tmp_path / "lambda_ran"
    classifier = lambda_model(str(marker))
    images = np.random.default_rng(0).random((16, *SHAPE), np.float32)
    data = Dataset(images, np.arange(16) % 3, None, "noise", PixelRange.parse("0-1"), True)
    with pytest.raises(UnsafeModelError, match="Lambda"):
        scan(classifier, data, [0], CleanseConfig(epochs=2, batch_size=4, margin_steps=0), ray="local:1")
    assert not marker.exists()
