"""Neural Cleanse for one target class: the paper's lambda schedule, best mask, early stop.

The engines (:mod:`nc_core.optimise.engine`, :mod:`nc_core.optimise.legacy`) only run epochs; this module decides
what the penalty lambda is, which mask to keep and when to stop, so both engines follow exactly
the same schedule and reach the same verdict. :class:`Reversal` is one class to run through it,
as :mod:`nc_core.optimise.runner` hands them out.

The MNIST sample's class 7 (its backdoor's target) for 10 epochs, on the engine a scan makes:

    >>> from nc_core.optimise.runner import make_engine
    >>> config = CleanseConfig(epochs=10)
    >>> engine = make_engine(classifier, data, config)
    >>> result = reverse_target(engine, target=7, config=config, num_samples=len(data))
    >>> result.reached_threshold, result.epochs, result.l1  # a trigger of a few pixels sends all to 7
    (True, 10, 3.5...)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from nc_core.errors import RunCancelled
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.epoch import EpochMetrics
from nc_core.optimise.masks import mask_l1
from nc_core.optimise.progress import CancelToken, EventCallback, ProgressEvent
from nc_core.optimise.results import EpochRecord, TriggerResult, converged, recent_shrink


class Engine(Protocol):
    """What the schedule needs from an engine: reset per class, run an epoch, read the trigger."""

    name: str

    def start_target(self, target: int, seed: int = 0) -> None: ...

    def run_epoch(self, lam: float, steps: int, on_step: Callable[[int], None] | None = None) -> EpochMetrics: ...

    def current_trigger(self) -> tuple[np.ndarray, np.ndarray]: ...


class LambdaSchedule:
    """The paper's penalty schedule, fed one epoch at a time.

    lambda starts at 0; after ``patience`` epochs in a row at or above the threshold it becomes
    ``init_cost``; then ``patience`` epochs above multiply it up, ``patience`` below divide it
    down. Early stop once it has gone both ways and the best L1 stalled for
    ``early_stop_patience`` epochs.

    >>> config = CleanseConfig()
    >>> schedule = LambdaSchedule(config)
    >>> for epoch in range(config.patience):  # the attack works: the penalty starts
    ...     schedule.update(asr=1.0, best_l1=40.0)
    >>> schedule.lam == config.init_cost
    True
    >>> for epoch in range(config.patience):  # and still works: the penalty doubles
    ...     schedule.update(asr=1.0, best_l1=30.0)
    >>> schedule.lam == config.init_cost * config.cost_multiplier_up
    True
    """

    def __init__(self, config: CleanseConfig):
        self.config = config
        self.lam = 0.0
        self._set_counter = self._up_counter = self._down_counter = 0
        self._went_up = self._went_down = False
        self._stall_counter = 0
        self._stall_best = math.inf

    def update(self, asr: float, best_l1: float) -> None:
        """Read one epoch's ASR and the best L1 so far; move lambda and the early-stop count."""
        c = self.config
        if best_l1 < math.inf:
            if best_l1 >= c.early_stop_threshold * self._stall_best:
                self._stall_counter += 1
            else:
                self._stall_counter = 0
            self._stall_best = min(best_l1, self._stall_best)
        succeeded = asr >= c.attack_succ_threshold
        if self.lam == 0.0:
            self._set_counter = self._set_counter + 1 if succeeded else 0
            if self._set_counter >= c.patience:
                self.lam = c.init_cost
                self._up_counter = self._down_counter = 0
                self._went_up = self._went_down = False
            return
        self._up_counter = self._up_counter + 1 if succeeded else 0
        self._down_counter = 0 if succeeded else self._down_counter + 1
        if self._up_counter >= c.patience:
            self._up_counter = 0
            self.lam *= c.cost_multiplier_up
            self._went_up = True
        elif self._down_counter >= c.patience:
            self._down_counter = 0
            self.lam /= c.cost_multiplier_down
            self._went_down = True

    @property
    def should_stop(self) -> bool:
        c = self.config
        return c.early_stop and self._went_up and self._went_down and self._stall_counter >= c.early_stop_patience


@dataclass
class Checkpoint:
    """Where a run stopped on its epoch budget: enough to continue it later, as if never stopped.

    Kept in memory by a scan between its screen and the full schedule (:mod:`nc_core.detection.screen`);
    ``engine_state`` is the engine's ``snapshot()`` (engines without one replay the run).
    """

    engine_state: object
    schedule: LambdaSchedule
    history: list[EpochRecord]
    best: tuple[float, np.ndarray, np.ndarray, float] | None
    best_l1: list[float]
    seconds: float


@dataclass(frozen=True)
class Reversal:
    """One class to reverse-engineer: its target, its config (epochs, seed) and where to resume from.

    A scan's runner (:mod:`nc_core.optimise.runner`) makes them; every driver (one class at a
    time, threads, :mod:`nc_core.optimise.batched`) runs each as a :class:`TargetRun`.

    >>> Reversal(33, CleanseConfig(epochs=10)).epochs_left
    10
    """

    target: int
    config: CleanseConfig
    resume: Checkpoint | None = None
    keep_checkpoint: bool = False

    @property
    def epochs_left(self) -> int:
        return self.config.epochs - (len(self.resume.history) if self.resume else 0)


class TargetRun:
    """One class's optimisation, fed one epoch at a time: the lambda schedule, the best mask, the stop.

    The engines only run epochs; a driver asks a run for its ``lam``, runs an epoch with it and
    hands the metrics back to :meth:`record`, until the run is ``finished``. So one class at a time
    (:func:`reverse_target`) and many classes in one batched step (:mod:`nc_core.optimise.batched`) follow
    exactly the same schedule.

    >>> from nc_core.optimise.runner import make_engine
    >>> engine = make_engine(classifier, data, CleanseConfig())
    >>> engine.start_target(7, seed=7)
    >>> run = TargetRun(7, CleanseConfig(epochs=5), steps=10)
    >>> while not run.finished:
    ...     run.record(engine.run_epoch(run.lam, run.steps), engine.current_trigger)
    >>> run.epoch, run.result(engine.name, engine.current_trigger).reached_threshold
    (5, True)
    """

    def __init__(self, target: int, config: CleanseConfig, steps: int, resume: Checkpoint | None = None):
        self.target, self.config, self.steps = int(target), config, int(steps)
        self.penalised = config.method == "neural-cleanse"
        self.started = time.perf_counter()
        if resume is None:
            self.schedule, self.history, self.best, self.best_l1, self.earlier = (
                LambdaSchedule(config),
                [],
                None,
                [],
                0.0,
            )
        else:
            self.schedule, self.history, self.best = resume.schedule, list(resume.history), resume.best
            self.best_l1, self.earlier = list(resume.best_l1), resume.seconds

    @property
    def lam(self) -> float:
        """The mask penalty of the next epoch."""
        return self.schedule.lam if self.penalised else 0.0

    @property
    def epoch(self) -> int:
        """Epochs run so far (a continued run counts those before its checkpoint)."""
        return len(self.history)

    @property
    def stopped_early(self) -> bool:
        return self.penalised and self.schedule.should_stop

    @property
    def finished(self) -> bool:
        return self.stopped_early or self.epoch >= self.config.epochs

    @property
    def seconds(self) -> float:
        return self.earlier + time.perf_counter() - self.started

    def record(self, metrics: EpochMetrics, current_trigger: Callable[[], tuple[np.ndarray, np.ndarray]]) -> None:
        """Take one epoch's means; keep the trigger if it is the smallest working one so far."""
        lam = self.lam
        self.history.append(EpochRecord(self.epoch + 1, metrics.loss, metrics.ce, metrics.l1, metrics.asr, lam))
        if metrics.asr >= self.config.attack_succ_threshold:
            mask, pattern = current_trigger()
            size = mask_l1(mask)
            if self.best is None or size < self.best[0]:
                self.best = (size, mask, pattern, metrics.asr)
        self.best_l1.append(self.best[0] if self.best else math.inf)
        if self.penalised:
            self.schedule.update(metrics.asr, self.best[0] if self.best else math.inf)

    def checkpoint(self, engine_state: object) -> Checkpoint:
        return Checkpoint(engine_state, self.schedule, list(self.history), self.best, list(self.best_l1), self.seconds)

    def result(
        self,
        engine_name: str,
        current_trigger: Callable[[], tuple[np.ndarray, np.ndarray]],
        evaluate_asr: Callable[[np.ndarray, np.ndarray], float] | None = None,
    ) -> TriggerResult:
        """The class's result: the best working mask (the last one for plain, or if none worked)."""
        reached = self.best is not None
        stopped_early = self.stopped_early
        shrink = 0.0 if stopped_early else recent_shrink(self.best_l1, self.config.early_stop_patience)
        best = self.best
        if best is None or not self.penalised:
            mask, pattern = current_trigger()
            best = (mask_l1(mask), mask, pattern, self.history[-1].asr)
        l1, mask, pattern, train_asr = best
        asr = evaluate_asr(mask, pattern) if evaluate_asr is not None else float("nan")
        return TriggerResult(
            target=self.target,
            method=self.config.method,
            engine=engine_name,
            mask=mask,
            pattern=pattern,
            l1=float(l1),
            asr=float(asr),
            train_asr=float(train_asr),
            reached_threshold=reached,
            epochs=self.epoch,
            steps=self.epoch * self.steps,
            seconds=self.seconds,
            history=self.history,
            runs_l1=[float(l1)],
            stopped_early=stopped_early,
            shrink=float(shrink),
            converged=converged(reached, stopped_early, shrink, self.penalised),
        )


def reverse_target(
    engine: Engine,
    target: int,
    config: CleanseConfig,
    num_samples: int,
    on_event: EventCallback | None = None,
    cancel: CancelToken | None = None,
    evaluate_asr: Callable[[np.ndarray, np.ndarray], float] | None = None,
    class_index: int = 0,
    num_classes: int = 1,
    resume: Checkpoint | None = None,
    on_checkpoint: Callable[[Checkpoint], None] | None = None,
) -> TriggerResult:
    """Reverse-engineer the trigger of one target class with ``engine``.

    ``neural-cleanse`` keeps the smallest mask among epochs whose ASR reached the threshold;
    ``plain`` (the tutorial's objective, no penalty) keeps the last one. Raises
    :class:`RunCancelled` when ``cancel`` fires, so a scan can keep the classes already done.

    ``resume`` continues a run from its :class:`Checkpoint` up to ``config.epochs``; a run that
    ends on its epoch budget hands its checkpoint to ``on_checkpoint`` (when the engine can take
    a snapshot), so a screen's run can later be continued instead of replayed.
    """
    steps = config.steps_for(num_samples)
    run = TargetRun(target, config, steps, resume)
    if resume is not None:
        engine.restore(resume.engine_state)
    else:
        engine.start_target(target, seed=config.seed + int(target))
    emit = event_emitter(on_event, run, class_index, num_classes)

    def on_step(step: int) -> None:
        emit("step", run.epoch + 1, step)
        check_cancel(cancel)

    emit("class_start", run.epoch, 0)
    while not run.finished:
        lam = run.lam
        run.record(engine.run_epoch(lam, steps, on_step), engine.current_trigger)
        emit("epoch", run.epoch, steps, epoch_metrics(run), engine.current_trigger)
    if on_checkpoint is not None and not run.stopped_early and hasattr(engine, "snapshot"):
        on_checkpoint(run.checkpoint(engine.snapshot()))
    result = run.result(engine.name, engine.current_trigger, evaluate_asr)
    emit("class_done", run.epoch, steps, {"l1": result.l1, "asr": result.asr})
    return result


def check_cancel(cancel: CancelToken | None) -> None:
    """Raise :class:`RunCancelled` once ``cancel`` fired (drivers call it after every chunk of steps)."""
    if cancel is not None and cancel.cancelled:
        raise RunCancelled("The run was cancelled.")


def epoch_metrics(run: TargetRun) -> dict[str, float]:
    """The last epoch's means and lambda, as ``epoch`` events carry them."""
    last = run.history[-1]
    return {"loss": last.loss, "ce": last.ce, "l1": last.l1, "asr": last.asr, "lam": last.lam}


def event_emitter(on_event: EventCallback | None, run: TargetRun, class_index: int = 0, num_classes: int = 1):
    """``emit(kind, epoch, step, metrics, trigger)`` for one run's :class:`ProgressEvent` s."""

    def emit(
        kind: str,
        epoch: int,
        step: int,
        metrics: dict | None = None,
        trigger: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        if on_event is not None:
            on_event(
                ProgressEvent(
                    kind,
                    run.target,
                    class_index,
                    num_classes,
                    epoch,
                    run.config.epochs,
                    step,
                    run.steps,
                    time.perf_counter() - run.started,
                    metrics or {},
                    trigger=trigger,
                )
            )

    return emit
