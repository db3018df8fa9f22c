"""One model's classes spread over the workers of a Ray cluster: the scan's runner as Ray tasks.

A scan's classes are independent optimisations of one model, so they spread over processes as
well as over threads. :class:`RayReversalRunner` ships the model once (saved as ``.keras`` bytes)
and the data once to Ray's object store; each worker process loads them on its first class, in
safe mode through :func:`~nc_core.loading.models.load_model` like any model a user brings, and
keeps them with its traced engine for every later class of the scan. Each class is one Ray task
that runs what :class:`~nc_core.optimise.runner.ReversalRunner` runs in this process
(:func:`~nc_core.optimise.runner.run_reversal`: the same engine, config and seed, one TensorFlow
thread a worker), so a class finds the same trigger wherever it runs.

The driver keeps what a scan shares: the progress bar (it moves as each class finishes; workers
send no per-step events), the cancel (polled while it waits; unfinished tasks are cancelled and
finished classes kept) and the screen checkpoints, plain NumPy that travel back with a screened
class and out again with the task that continues it, on whichever worker is free. A task whose
worker dies runs again elsewhere (Ray's ``max_retries``), from the same start. The max-margin test
runs on the cluster too, as one more task beside the classes (:meth:`~RayReversalRunner.start_side_task`):
the driver, perhaps a laptop joined to a cluster, only schedules, and on a local cluster the test
takes a worker's share instead of holding up every class. The workers load the model and trace
their engines as soon as the runner starts (one warm-up task per worker).

The MNIST sample on a local cluster of two workers (about 30 s on 2 cores, Ray's start included):

    >>> progress = ScanProgress(None, CleanseConfig().steps_for(len(data)))
    >>> runner = RayReversalRunner(classifier, data, CleanseConfig(epochs=5), progress, None, RayCluster(workers=2))
    >>> found = {}  # class -> its result, as each finishes
    >>> def on_done(reversal, result):
    ...     found[reversal.target] = result
    >>> runner.run([runner.reversal(t, 5) for t in (6, 7)], on_done)
    >>> runner.close()
    >>> sorted(found), runner.device
    ([6, 7], 'a local Ray cluster of 2 workers')
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras

from nc_core.errors import InvalidParameterError
from nc_core.loading.data import Dataset
from nc_core.loading.models import compiled_forward, load_model, predict
from nc_core.optimise.cluster import TASK_RETRIES, RayCluster, start_ray
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.progress import CancelToken, EventCallback, ProgressEvent, ScanProgress
from nc_core.optimise.results import TriggerResult
from nc_core.optimise.runner import ScanRunner, SideTask, attack_success_rate, make_engine, run_reversal
from nc_core.optimise.schedule import Checkpoint, Reversal, check_cancel

#: Seconds the driver waits for a class to finish before it looks at the cancel token again.
CANCEL_POLL_SECONDS = 0.5


class RayReversalRunner(ScanRunner):
    """Runs a scan's reversals as Ray tasks, one class per task and one CPU per class, on a local
    cluster it starts or on the cluster at ``cluster.address``; keeps screen checkpoints.

    A process already connected to Ray uses that connection and leaves it open; otherwise
    :meth:`close` stops the local cluster (or leaves the joined one). The keras engine only, one
    class per step: the tutorial's engine and the batched engine run on this machine only.
    """

    def __init__(
        self,
        classifier: keras.Model,
        data: Dataset,
        config: CleanseConfig,
        progress: ScanProgress,
        cancel: CancelToken | None,
        cluster: RayCluster,
    ):
        if config.engine != "keras":
            raise InvalidParameterError(
                "A Ray scan runs the keras engine; the tutorial's engine (legacy) runs on this machine only."
            )
        if config.classes_per_step > 1:
            raise InvalidParameterError(
                "A Ray scan runs one class per worker; several classes per step (the batched engine) run "
                "on this machine only."
            )
        super().__init__(classifier, data, config, progress, cancel)
        self.cluster = cluster
        self._side: dict = {}  # a side task's ref -> (what takes its result, what the task is called)
        self._owns_ray = not _connected()
        workers = start_ray(cluster.address, cluster.workers) if self._owns_ray else None
        import ray

        try:
            self.workers = workers or int(ray.cluster_resources().get("CPU", 1))
            model = _keras_bytes(classifier)
            shipped = replace(data, raw_inputs=None)
            self._key = _content_key(model, shipped)
            self._shipped = [ray.put(model), ray.put(shipped)]
            self._task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_reverse_class)
            self._side_task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_run_side_task)
            warm_up = ray.remote(num_cpus=1)(_warm_up)
            busy = min(self.workers, int(classifier.output_shape[-1]))  # no more workers than classes
            self._warming = [warm_up.remote(self._key, self._shipped, config) for _ in range(busy)]
        except BaseException:
            self.close()
            raise

    @property
    def device(self) -> str:
        if self.cluster.address is None:
            return f"a local Ray cluster of {self.workers} workers"
        return f"the Ray cluster at {self.cluster.address} ({self.workers} workers)"

    def run(self, reversals: Sequence[Reversal], on_done: Callable[[Reversal, TriggerResult], None]) -> None:
        """Run every reversal as a task, handing each class to ``on_done`` as it finishes; on a
        cancel (or an error) the unfinished tasks are cancelled and
        :class:`~nc_core.errors.RunCancelled` raised, the finished classes delivered."""
        import ray

        running: dict = {}
        try:
            for reversal in reversals:
                ref = self._task.remote(self._key, self._shipped, reversal)
                running[ref] = (reversal, self._started(reversal))
            while running:
                for ref in self._poll(running):
                    reversal, report = running.pop(ref)
                    result, checkpoint = _outcome(ref, f"Class {reversal.target}")
                    if checkpoint is not None:
                        self.checkpoints[reversal.target] = checkpoint
                    report(self._event("class_done", reversal, result.epochs, result.seconds, result))
                    on_done(reversal, result)
                check_cancel(self.cancel)
        finally:
            for ref in running:
                ray.cancel(ref)

    def start_side_task(self, task: SideTask, on_done: Callable[[Any], None]) -> None:
        """Run ``task(classifier, data, None)`` as a task on the cluster, beside the classes; its
        result goes to ``on_done`` as it arrives, while classes run or in :meth:`wait_side_tasks`.
        A cancel stops it from here (:meth:`close`), so it gets no token of its own."""
        self._side[self._side_task.remote(self._key, self._shipped, task)] = (on_done, str(task))

    def wait_side_tasks(self) -> None:
        """Wait for every side task's result, looking at the cancel token between waits."""
        while self._side:
            self._poll({})
            check_cancel(self.cancel)

    def close(self) -> None:
        """Cancel the side tasks still running; stop the local cluster this runner started, or
        leave the cluster it joined."""
        if not (self._side or self._owns_ray):
            return
        import ray

        for ref in self._side:
            ray.cancel(ref)
        self._side.clear()
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def _poll(self, running: dict) -> list:
        """The class tasks of ``running`` that finished within one poll; a side task that finished
        meanwhile hands its result over on the way."""
        import ray

        ready, _ = ray.wait(list(running) + list(self._side), num_returns=1, timeout=CANCEL_POLL_SECONDS)
        for ref in [ref for ref in ready if ref in self._side]:
            on_done, what = self._side.pop(ref)
            on_done(_outcome(ref, what))
        return [ref for ref in ready if ref in running]

    def _started(self, reversal: Reversal) -> EventCallback:
        """The reversal's progress callback, told that its class has started."""
        report = self.events(reversal)
        report(self._event("class_start", reversal, reversal.config.epochs - reversal.epochs_left, 0.0))
        return report

    def _event(
        self, kind: str, reversal: Reversal, epoch: int, seconds: float, result: TriggerResult | None = None
    ) -> ProgressEvent:
        steps = reversal.config.steps_for(len(self.data))
        return ProgressEvent(
            kind,
            reversal.target,
            0,
            1,
            epoch,
            reversal.config.epochs,
            steps if result is not None else 0,
            steps,
            seconds,
            {"l1": result.l1, "asr": result.asr} if result is not None else {},
        )


def _connected() -> bool:
    """Whether this process is connected to a Ray cluster already (False where Ray is not installed)."""
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized()


def _outcome(ref, what: str) -> Any:
    """A finished task's result (``what`` names the task); an error the task raised comes back as
    itself (a user's error, a :class:`~nc_core.errors.NCError`, keeps its sentence), the worker's
    traceback chained to it."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        if isinstance(error.cause, Exception):
            raise error.cause from error
        raise
    except ray.exceptions.RayError as error:  # its worker died on every try
        raise RuntimeError(
            f"{what} could not run on the Ray cluster: it was tried {TASK_RETRIES + 1} times ({type(error).__name__})."
        ) from None


def _keras_bytes(classifier: keras.Model) -> bytes:
    """The classifier as a ``.keras`` file's bytes, as a worker loads it."""
    with tempfile.TemporaryDirectory(prefix="nc_ray_") as folder:
        path = Path(folder) / "model.keras"
        classifier.save(path)
        return path.read_bytes()


def _content_key(model: bytes, data: Dataset) -> str:
    """What a worker's loaded model is known by: the model's bytes, the images, labels and range."""
    digest = hashlib.sha256(model)
    for array in (data.x, data.y):
        digest.update(memoryview(array).cast("B") if array.flags.c_contiguous else array.tobytes())
    digest.update(data.pixel_range.label.encode())
    return digest.hexdigest()


# -- on the workers ---------------------------------------------------------------------------


@dataclass
class _WorkerModel:
    """A worker process's model, data and traced forward pass, and its engines (one per config,
    whatever the epochs and seed: a scan's classes and their restarts share one)."""

    key: str
    classifier: keras.Model
    data: Dataset
    forward: Callable
    engines: dict = field(default_factory=dict)

    def engine(self, config: CleanseConfig):
        settings = config.replace(epochs=1, seed=0)
        if settings not in self.engines:
            self.engines[settings] = make_engine(self.classifier, self.data, config)
        return self.engines[settings]


#: The model this worker process holds (one at a time), by its content key.
_WORKER_MODELS: dict[str, _WorkerModel] = {}


def _worker_model(key: str, shipped: list) -> _WorkerModel:
    """This worker's model, loaded (in safe mode, with one TensorFlow thread) on its first class."""
    if key not in _WORKER_MODELS:
        import ray

        from nc_core.runtime import configure_backend

        configure_backend(1)  # before the first op; once TensorFlow runs, the call changes nothing
        model, data = ray.get(shipped)
        with tempfile.TemporaryDirectory(prefix="nc_ray_") as folder:
            path = Path(folder) / "model.keras"
            path.write_bytes(model)
            classifier = load_model(path)
        _WORKER_MODELS.clear()
        _WORKER_MODELS[key] = _WorkerModel(key, classifier, data, compiled_forward(classifier))
    return _WORKER_MODELS[key]


def _warm_up(key: str, shipped: list, config: CleanseConfig) -> None:
    """A Ray task: load the model and trace the engine and the forward pass before the first class
    comes (while the driver runs the max-margin test), as the first class would."""
    worker = _worker_model(key, shipped)
    worker.engine(config).warm_up()
    predict(worker.classifier, worker.data.pixel_range.from_unit(worker.data.x[:1]), forward=worker.forward)


def _reverse_class(key: str, shipped: list, reversal: Reversal) -> tuple[TriggerResult, Checkpoint | None]:
    """A Ray task: one class on this worker's model; its result, and its checkpoint for a screen."""
    worker = _worker_model(key, shipped)
    engine = worker.engine(reversal.config)

    def asr(mask, pattern) -> float:
        return attack_success_rate(worker.classifier, worker.data, mask, pattern, reversal.target, worker.forward)

    return run_reversal(engine, reversal, len(worker.data), asr)


def _run_side_task(key: str, shipped: list, task: SideTask) -> Any:
    """A Ray task: work of the scan besides its classes (the max-margin test) on this worker's model."""
    worker = _worker_model(key, shipped)
    return task(worker.classifier, worker.data, None)
