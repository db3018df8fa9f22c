"""Background runs: each run works in its own process, detached from whoever started it.

A page rerun, a browser refresh, a second viewer or a closed tab does not touch the process; the
page only reads what the worker records in the :class:`~nc_core.runs.store.RunStore` (live progress,
finished classes) and sets the cancel flag. If the process dies, the store marks the run
interrupted and keeps its finished classes.

A short scan of two classes, followed as a page follows it (``reap`` ends a run whose worker died):

    >>> import time
    >>> from nc_core.optimise.config import CleanseConfig
    >>> spec = ScanSpec(config=CleanseConfig(epochs=5, margin_steps=0), classes=(6, 7))
    >>> run_id = submit_run(store, "scan", Path("sample_models/mnist_backdoored.keras"),
    ...                     Path("sample_models/mnist_data.npz"), spec)
    >>> while store.get(run_id).active and not store.reap():
    ...     time.sleep(0.5)
    >>> store.get(run_id).status, store.get(run_id).progress["fraction"]
    ('done', 1.0)
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from nc_core.errors import NCError
from nc_core.runs.spec import ScanSpec
from nc_core.runs.store import HEARTBEAT_INTERVAL, RunStore

PROGRESS_INTERVAL = 0.3
#: Seconds between two writes of the class's current mask and pattern (the live view draws them).
LIVE_TRIGGER_INTERVAL = 1.0
CANCEL_POLL_INTERVAL = 0.5


def submit_run(
    store: RunStore,
    kind: str,
    model_path: Path,
    data_path: Path,
    spec: ScanSpec,
    display_names: tuple[str, str] | None = None,
) -> str:
    """Store a scan or reverse run with copies of its inputs and start its worker process; return
    the run id. ``spec`` says what to run (its file names are set here, to the copies')."""
    model_path, data_path = Path(model_path), Path(data_path)
    model_file = "model" + model_path.suffix.lower()
    data_file = "data" + (data_path.suffix.lower() if data_path.is_file() else "")
    names = display_names or (model_path.name, data_path.name)
    spec = spec.replace(model_file=model_file, data_file=data_file)
    inputs = {model_file: model_path}
    if data_path.is_file():
        inputs[data_file] = data_path
    run_id = store.create_run(kind, names[0], names[1], spec.to_settings(), inputs)
    if not data_path.is_file():
        import shutil

        shutil.copytree(data_path, store.run_dir(run_id) / "inputs" / data_file)
    start_worker(store, run_id)
    return run_id


def submit_repair(
    store: RunStore, scan_id: str, config=None, force: bool = False, trigger_card: dict | None = None
) -> str:
    """Start a repair of the model a finished scan run looked at (:mod:`nc_core.runs.repair_job`);
    return the new run's id. Refuses, with a sentence, what cannot be repaired."""
    from nc_core.repair.config import RepairConfig
    from nc_core.runs.repair_job import create_repair_run

    run_id = create_repair_run(store, scan_id, config or RepairConfig(), force, trigger_card)
    start_worker(store, run_id)
    return run_id


def start_worker(store: RunStore, run_id: str) -> int:
    """Start the detached process that executes ``run_id``; its output goes to the run's log."""
    log = open(store.run_dir(run_id) / "worker.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "nc_core.runs.worker", str(store.root), run_id],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    log.close()
    store.set_status(run_id, "queued", pid=process.pid)
    return process.pid


class _Recorder:
    """Turns progress events into rate-limited store writes, keeping the live curves.

    Several classes may run at once (threads, or the batched engine); the live view follows one
    of them, the one that started first, until it finishes, so its curves, its mask and its
    epoch counter belong to one class instead of flickering between them. The overall fraction
    comes from every event.
    """

    def __init__(self, store: RunStore, run_id: str, offset: float = 0.0, stage: str = ""):
        """``offset``: the share of the run done before these events (a repair run's re-scan
        starts after the repair), so the stored fraction runs from it to 1 and never back."""
        self.store, self.run_id, self.offset, self.stage = store, run_id, offset, stage
        self.curves: dict[int, list[dict]] = {}  # running class -> its epochs so far, in start order
        self.latest: dict[int, object] = {}  # running class -> its last event
        self.last_write = 0.0
        self.last_trigger = 0.0
        self.started = time.time()

    def __call__(self, event) -> None:
        if event.kind == "class_start":
            self.curves[event.target] = []
        if event.kind == "epoch":
            self.curves.setdefault(event.target, []).append({"epoch": event.epoch, **event.metrics})
        self.latest[event.target] = event
        followed_target = next(iter(self.curves), event.target)  # the running class started first
        followed = event.target == followed_target
        if (
            followed
            and event.kind == "epoch"
            and event.trigger is not None
            and time.monotonic() - self.last_trigger >= LIVE_TRIGGER_INTERVAL
        ):
            self.last_trigger = time.monotonic()
            mask, pattern = event.trigger()
            self.store.save_live_trigger(self.run_id, event.target, event.epoch, mask, pattern)
        shown = self.latest[followed_target]
        curves = list(self.curves.get(shown.target, []))
        if event.kind == "class_done":
            self.curves.pop(event.target, None)
            self.latest.pop(event.target, None)
        urgent = followed and event.kind in ("class_start", "class_done")
        if urgent or time.monotonic() - self.last_write >= PROGRESS_INTERVAL:
            self.last_write = time.monotonic()
            self.store.update_progress(
                self.run_id,
                {
                    "kind": shown.kind,
                    "target": shown.target,
                    "class_index": shown.class_index,
                    "num_classes": event.num_classes,
                    "epoch": shown.epoch,
                    "max_epochs": shown.max_epochs,
                    "step": shown.step,
                    "steps_per_epoch": shown.steps_per_epoch,
                    "fraction": self.offset + (1 - self.offset) * event.fraction,
                    "elapsed": time.time() - self.started,
                    "phase": event.phase,
                    "stage": self.stage,
                    "curves": curves,
                },
            )


def _start_heartbeat(store: RunStore, run_id: str) -> threading.Event:
    """Beat every ``HEARTBEAT_INTERVAL`` seconds from a daemon thread, so a worker that is stopped
    or hung (its threads stop too) is told from one that works through a long step. Setting the
    returned event stops it (a Ray worker runs many audit tasks in one process)."""
    stop = threading.Event()

    def beat_until_stopped() -> None:
        while True:
            try:
                store.beat(run_id)
            except NCError:
                pass  # a busy or full disk: the next beat may pass; the timeout is generous
            if stop.wait(HEARTBEAT_INTERVAL):
                return

    threading.Thread(target=beat_until_stopped, name="heartbeat", daemon=True).start()
    return stop


def _polled(check, interval: float):
    """``check`` called at most once per ``interval`` seconds; the last answer in between."""
    state = {"at": 0.0, "answer": False}

    def poll() -> bool:
        if time.monotonic() - state["at"] >= interval:
            state["at"], state["answer"] = time.monotonic(), check()
        return state["answer"]

    return poll


def execute(store: RunStore, run_id: str) -> str:
    """Run ``run_id`` in this process to its end; return its final status."""
    store.set_status(run_id, "running", pid=os.getpid())
    heartbeat = _start_heartbeat(store, run_id)
    try:
        return _execute(store, run_id)
    finally:
        heartbeat.set()


def _execute(store: RunStore, run_id: str) -> str:
    from nc_core.detection.scan import scan
    from nc_core.loading.inputs import load_inputs
    from nc_core.optimise.progress import CancelToken

    record = store.get(run_id)
    inputs_dir = store.run_dir(run_id) / "inputs"
    if record.kind == "repair":
        return _execute_repair(store, record)
    try:
        spec = ScanSpec.from_settings(record.settings)
        inputs = load_inputs(
            inputs_dir / spec.model_file, inputs_dir / spec.data_file, spec.pixel_range, spec.max_samples
        )
        recorder = _Recorder(store, run_id)
        token = CancelToken(check=_polled(lambda: store.cancel_requested(run_id), CANCEL_POLL_INTERVAL))
        report = scan(
            inputs.classifier,
            inputs.data,
            spec.classes,
            spec.config,
            on_event=recorder,
            cancel=token,
            model_name=record.model,
            done=store.class_results(run_id),
            on_result=lambda r: store.save_class_result(run_id, r),
            rule=spec.rule,
            margin=store.margin_result(run_id),
            on_margin=lambda m: store.save_margin(run_id, m),
            on_samples=lambda samples: store.save_samples(run_id, samples),
            ray=spec.ray,
        )
        report.data = record.data
        store.save_report(run_id, report)
        status = "cancelled" if report.cancelled else "done"
        store.set_status(run_id, status)
        return status
    except NCError as error:
        store.set_status(run_id, "failed", error=str(error))
    except Exception as error:  # recorded for the user; the traceback goes to the run's log
        traceback.print_exc()
        store.set_status(run_id, "failed", error=f"Unexpected failure: {type(error).__name__}: {error}")
    return "failed"


def _execute_repair(store: RunStore, record) -> str:
    from nc_core.errors import RunCancelled
    from nc_core.optimise.progress import CancelToken
    from nc_core.runs.repair_job import run_repair_job

    token = CancelToken(check=_polled(lambda: store.cancel_requested(record.id), CANCEL_POLL_INTERVAL))
    try:
        status = run_repair_job(store, record, token, lambda offset: _Recorder(store, record.id, offset, "rescan"))
        store.set_status(record.id, status)
        return status
    except RunCancelled:
        store.set_status(record.id, "cancelled")
        return "cancelled"
    except NCError as error:
        store.set_status(record.id, "failed", error=str(error))
    except Exception as error:  # recorded for the user; the traceback goes to the run's log
        traceback.print_exc()
        store.set_status(record.id, "failed", error=f"Unexpected failure: {type(error).__name__}: {error}")
    return "failed"


if __name__ == "__main__":
    from nc_core.runtime import configure_backend

    configure_backend()
    execute(RunStore(sys.argv[1]), sys.argv[2])
