"""Running the optimisation on a model and its data: make the engine, reverse one class, run many.

:func:`reverse_engineer` recovers one class's trigger; :class:`ReversalRunner` runs a scan's list
of :class:`~nc_core.optimise.schedule.Reversal` s, one class at a time, side by side on threads or
several per batched step, and keeps the checkpoints of screened classes (:class:`ScanRunner`, what
it shares with the runner of :mod:`nc_core.optimise.ray_runner`, which runs them as Ray tasks).
Which classes to run, and what their results mean, is :mod:`nc_core.detection.scan`'s.

The MNIST sample's class 7, its backdoor's target, for 10 epochs; the real trigger is a 3x3
checkerboard (``card["trigger"]``):

    >>> result = reverse_engineer(classifier, data, target=7, config=CleanseConfig(epochs=10))
    >>> result.l1, result.asr
    (3.5..., 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from nc_core import backend
from nc_core.errors import InvalidParameterError
from nc_core.loading.data import Dataset
from nc_core.loading.models import compiled_forward, predict
from nc_core.optimise.batched import BatchedEngine, OneClassEngine, run_batched
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.masks import stamp
from nc_core.optimise.progress import CancelToken, EventCallback, ScanProgress
from nc_core.optimise.results import TriggerResult
from nc_core.optimise.schedule import Checkpoint, Reversal, reverse_target
from nc_core.optimise.threads import auto_threads, run_on_threads

ASR_EVAL_SAMPLES = 2000


def attack_success_rate(
    classifier: keras.Model,
    data: Dataset,
    mask: np.ndarray,
    pattern: np.ndarray,
    target: int,
    forward: Callable[[np.ndarray], object] | None = None,
) -> float:
    """Share of clean samples of *other* classes that the trigger sends to ``target``.

    ``forward`` is the classifier's :func:`~nc_core.loading.models.compiled_forward`, where one scan
    evaluates many classes.

    ``result`` is the scan's class 7 of the MNIST sample, whose ASR was measured this way:

    >>> asr = attack_success_rate(classifier, data, result.mask, result.pattern, 7)
    >>> asr > 0.95, asr == result.asr  # nearly every other digit turns into a 7, as the scan measured
    (True, True)
    """
    others = np.flatnonzero(data.y != target)[:ASR_EVAL_SAMPLES]
    if others.size == 0:
        return float("nan")
    triggered = data.pixel_range.from_unit(stamp(data.x[others], mask, pattern))
    return float(np.mean(predict(classifier, triggered, forward=forward).argmax(axis=1) == target))


def make_engine(classifier: keras.Model, data: Dataset, config: CleanseConfig, x_unit=None):
    """The one-class engine the config names, on this process's Keras backend, ready to optimise
    triggers on ``data`` (or on ``x_unit``, the same images as one tensor that engines share).

    TensorFlow runs :class:`~nc_core.optimise.engine.KerasEngine` (or the tutorial's legacy engine);
    JAX and PyTorch run the ``keras.ops`` engine with one slot, which has the paper's method only.
    """
    settings = _optimiser_settings(config)
    x = data.x if x_unit is None else x_unit
    if config.engine == "legacy":
        backend.require_tensorflow("The tutorial's engine (--engine legacy)")
        from nc_core.optimise.legacy import LegacyEngine

        return LegacyEngine(classifier, x, data.pixel_range, method=config.method, **settings)
    if backend.backend_name() != "tensorflow":
        if config.method != "neural-cleanse":
            backend.require_tensorflow(f"The {config.method!r} trigger method")
        return OneClassEngine(classifier, x, data.pixel_range, **settings)
    from nc_core.optimise.engine import KerasEngine

    return KerasEngine(classifier, x, data.pixel_range, method=config.method, **settings)


def check_classes(classes: Sequence[int], num_classes: int) -> list[int]:
    """The chosen classes, sorted and once each; refused when empty or outside the model's classes."""
    chosen = [int(c) for c in classes]
    if not chosen:
        raise InvalidParameterError("Choose at least one class to scan.")
    bad = [c for c in chosen if not 0 <= c < num_classes]
    if bad:
        raise InvalidParameterError(f"Class {bad[0]} is out of range: the model has classes 0 to {num_classes - 1}.")
    return sorted(set(chosen))


def reverse_engineer(
    classifier: keras.Model,
    data: Dataset,
    target: int,
    config: CleanseConfig = CleanseConfig(),
    on_event: EventCallback | None = None,
    cancel: CancelToken | None = None,
) -> TriggerResult:
    """Recover the smallest trigger that sends ``data`` to class ``target``.

    Raises :class:`~nc_core.errors.RunCancelled` if cancelled.
    """
    num_classes = int(classifier.output_shape[-1])
    (target,) = check_classes([target], num_classes)
    config.validate(len(data))
    engine = make_engine(classifier, data, config)
    return reverse_target(
        engine,
        target,
        config,
        len(data),
        on_event,
        cancel,
        evaluate_asr=lambda mask, pattern: attack_success_rate(classifier, data, mask, pattern, target),
    )


def run_reversal(
    engine,
    reversal: Reversal,
    num_samples: int,
    evaluate_asr: Callable[[np.ndarray, np.ndarray], float],
    on_event: EventCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[TriggerResult, Checkpoint | None]:
    """One reversal on ``engine``: its result, and its checkpoint when it is a screen's run.

    Every runner runs a class through here, on this process's engine or on a Ray worker's
    (:mod:`nc_core.optimise.ray_runner`), so a class follows the same steps wherever it runs.
    """
    kept: list[Checkpoint] = []
    result = reverse_target(
        engine,
        reversal.target,
        reversal.config,
        num_samples,
        on_event,
        cancel,
        evaluate_asr=evaluate_asr,
        resume=reversal.resume,
        on_checkpoint=kept.append if reversal.keep_checkpoint else None,
    )
    return result, kept[0] if kept else None


#: Work a scan runs besides its classes: ``task(classifier, data, cancel)``, picklable for a Ray
#: worker; ``str(task)`` names it in an error.
SideTask = Callable[[keras.Model, Dataset, CancelToken | None], Any]


class ScanRunner:
    """What every scan runner shares: the model and data, the screen checkpoints it keeps, one
    :class:`~nc_core.optimise.schedule.Reversal` per class run, and the ASR of a trigger.

    A runner's ``run(reversals, on_done)`` runs the reversals and hands each class to
    ``on_done(reversal, result)`` as it finishes; :class:`ReversalRunner` runs them in this
    process, :class:`~nc_core.optimise.ray_runner.RayReversalRunner` as Ray tasks. ``close()``
    releases what the runner holds (a Ray cluster it started); a scan calls it when it ends.
    """

    def __init__(
        self,
        classifier: keras.Model,
        data: Dataset,
        config: CleanseConfig,
        progress: ScanProgress,
        cancel: CancelToken | None,
    ):
        self.classifier, self.data, self.config = classifier, data, config
        self.progress, self.cancel = progress, cancel
        self.checkpoints: dict[int, Checkpoint] = {}
        self.forward = compiled_forward(classifier)

    @property
    def device(self) -> str:
        """Where the classes run, as the report records it beside the Keras backend."""
        return backend.device_name()

    def reversal(self, target: int, epochs: int, seed_offset: int = 0) -> Reversal:
        """Run ``target`` to ``epochs``, continuing its screen where one was kept (not for restarts)."""
        resume = self.checkpoints.pop(target, None) if not seed_offset else None
        return Reversal(
            target,
            self.config.replace(seed=self.config.seed + seed_offset, epochs=epochs),
            resume,
            keep_checkpoint=epochs < self.config.epochs,
        )

    def keep_checkpoints(self, targets: set[int]) -> None:
        """Drop the checkpoints of every class not in ``targets`` (a probe's, once it cannot be chosen)."""
        for target in [t for t in self.checkpoints if t not in targets]:
            self.checkpoints.pop(target, None)

    def run(self, reversals: Sequence[Reversal], on_done: Callable[[Reversal, TriggerResult], None]) -> None:
        raise NotImplementedError

    def start_side_task(self, task: SideTask, on_done: Callable[[Any], None]) -> None:
        """Run ``task(classifier, data, cancel)``, work of the scan besides its classes (the
        max-margin test), and hand its result to ``on_done``.

        Here it runs at once, before any class, on this process's cores; a Ray runner runs it as
        one more task on the cluster, beside the classes (:meth:`wait_side_tasks` collects it)."""
        on_done(task(self.classifier, self.data, self.cancel))

    def wait_side_tasks(self) -> None:
        """Wait until every side task has handed its result over (here they all have)."""

    def events(self, reversal: Reversal) -> EventCallback:
        """The progress callback of a reversal as it starts (its epochs counted on from its checkpoint)."""
        return self.progress.run(reversal.epochs_left, reversal.config.epochs - reversal.epochs_left + 1)

    def asr(self, target: int, mask: np.ndarray, pattern: np.ndarray) -> float:
        return attack_success_rate(self.classifier, self.data, mask, pattern, target, self.forward)

    def close(self) -> None:
        """Release what the runner holds; a local runner holds nothing that outlives it."""


class ReversalRunner(ScanRunner):
    """Runs a scan's reversals in this process: one class at a time, side by side on threads, or
    several per step; and keeps screen checkpoints.

    ``config.classes_per_step`` above 1 selects the batched engine (:mod:`nc_core.optimise.batched`);
    otherwise the keras engine runs on ``config.threads`` threads (:mod:`nc_core.optimise.threads`), one
    engine each. Either way each reversal reports its progress through ``progress`` and each result
    goes to the caller's ``on_done`` as it finishes, so a cancel keeps every class already done.
    """

    def __init__(
        self,
        classifier: keras.Model,
        data: Dataset,
        config: CleanseConfig,
        progress: ScanProgress,
        cancel: CancelToken | None,
    ):
        super().__init__(classifier, data, config, progress, cancel)
        self.batched = config.classes_per_step > 1
        if self.batched:
            self.engine = BatchedEngine(
                classifier, data.x, data.pixel_range, config.classes_per_step, **_optimiser_settings(config)
            )
            return
        threads = auto_threads(config.threads) if config.engine == "keras" and _on_tensorflow() else 1
        shared = _shared_images(data.x) if threads > 1 else None
        self.engines = [make_engine(classifier, data, config, shared) for _ in range(threads)]
        if threads > 1:  # trace on this thread, before any worker thread calls them
            for engine in self.engines:
                engine.warm_up()
            predict(classifier, data.pixel_range.from_unit(data.x[:1]), forward=self.forward)

    def run(self, reversals: Sequence[Reversal], on_done: Callable[[Reversal, TriggerResult], None]) -> None:
        """Run every reversal, handing each class to ``on_done`` as it finishes."""

        def done(reversal: Reversal, result: TriggerResult, checkpoint: Checkpoint | None) -> None:
            if checkpoint is not None:
                self.checkpoints[reversal.target] = checkpoint
            on_done(reversal, result)

        if self.batched:
            run_batched(self.engine, reversals, len(self.data), done, self.events, self.cancel, self.asr)
        elif len(self.engines) > 1 and len(reversals) > 1:
            run_on_threads(self.engines, reversals, self.run_one, self.events, done, self.cancel)
        else:
            for reversal in reversals:
                done(reversal, *self.run_one(self.engines[0], reversal, self.events(reversal), self.cancel))

    def run_one(
        self, engine, reversal: Reversal, on_event: EventCallback, cancel
    ) -> tuple[TriggerResult, Checkpoint | None]:
        """One reversal on ``engine``: its result, and its checkpoint when it is a screen's run."""
        asr = lambda mask, pattern: self.asr(reversal.target, mask, pattern)  # noqa: E731
        return run_reversal(engine, reversal, len(self.data), asr, on_event, cancel)


def _optimiser_settings(config: CleanseConfig) -> dict:
    """The mini-batch and Adam settings every engine takes, from the config."""
    return {
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "beta_1": config.beta_1,
        "beta_2": config.beta_2,
    }


def _on_tensorflow() -> bool:
    """Engines side by side on threads are TensorFlow's (its ops release the GIL; JAX's one
    compiled program per step and PyTorch's intra-op threads use the cores already)."""
    return backend.backend_name() == "tensorflow"


def _shared_images(x: np.ndarray):
    """The images as one TensorFlow tensor that every thread's engine reads."""
    import tensorflow as tf

    return tf.constant(np.asarray(x, np.float32))
