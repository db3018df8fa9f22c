"""Neural Cleanse for one target class: the paper's lambda schedule, best mask, early stop.

The engines (:mod:`nc_core.optimise.engine`, :mod:`nc_core.optimise.legacy`) only run epochs; this module decides
what the penalty lambda is, which mask to keep and when to stop, so both engines follow exactly
the same schedule and reach the same verdict.

    >>> result = reverse_target(engine, target=33, config=CleanseConfig())
    >>> result.l1, result.reached_threshold
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

import numpy as np

from nc_core.errors import InvalidParameterError, RunCancelled
from nc_core.optimise.epoch import EpochMetrics
from nc_core.optimise.masks import MASK_METHODS, mask_l1
from nc_core.optimise.progress import CancelToken, EventCallback, ProgressEvent

ENGINES = ("keras", "legacy")
#: Fewer clean images than this cannot say whether a trigger works on inputs in general.
MIN_SAMPLES = 5


@dataclass(frozen=True)
class CleanseConfig:
    """Every knob of the optimisation, with the product's defaults.

    The paper's own defaults are :meth:`original`; the product's are cheaper (shorter epochs and
    patience) so a 43-class scan fits in minutes on a laptop CPU, with the same schedule.

    ``steps_per_epoch=None`` means ``min(N, samples_per_epoch) // batch_size`` mini-batches.
    ``confirm_runs`` re-runs each class the first pass flags from that many fresh random starts
    and keeps the median (see :func:`nc_core.detection.scan.scan`); the paper had none. ``screen_epochs``
    is the short first pass every class of a scan gets before only the classes that could change
    the verdict get the full schedule (:mod:`nc_core.detection.screen`); 0 gives every class the full one.
    ``classes_per_step`` above 1 optimises that many classes of a scan in one batched step
    (:mod:`nc_core.optimise.batched`, the accelerator path; keras engine, neural-cleanse method).
    ``threads`` optimises that many classes side by side on CPU threads (:mod:`nc_core.optimise.threads`;
    0, the default, is one per core up to 4; keras engine, one class per step). It changes how
    fast a scan runs, never what it finds.
    """

    method: str = "neural-cleanse"
    engine: str = "keras"
    epochs: int = 60
    batch_size: int = 32
    samples_per_epoch: int = 320
    steps_per_epoch: int | None = None
    learning_rate: float = 0.1
    beta_1: float = 0.5
    beta_2: float = 0.9
    init_cost: float = 1e-3
    attack_succ_threshold: float = 0.99
    patience: int = 3
    cost_multiplier_up: float = 2.0
    cost_multiplier_down: float = 2.0**1.5
    early_stop: bool = True
    early_stop_threshold: float = 1.0
    early_stop_patience: int = 10
    confirm_runs: int = 2
    screen_epochs: int = 10
    classes_per_step: int = 1
    seed: int = 0
    threads: int = 0
    #: The max-margin detector run beside Neural Cleanse (:mod:`nc_core.detection.margin`): Adam
    #: steps and random starts per class; ``margin_steps=0`` runs Neural Cleanse alone.
    margin_steps: int = 300
    margin_starts: int = 8

    @classmethod
    def original(cls, **overrides) -> CleanseConfig:
        """The authors' GTSRB defaults: 1000 samples a epoch, up to 1000 epochs, patience 5/25."""
        paper = dict(
            epochs=1000, samples_per_epoch=1000, patience=5, early_stop_patience=25, confirm_runs=0, screen_epochs=0
        )
        return cls(**{**paper, **overrides})

    def replace(self, **changes) -> CleanseConfig:
        return replace(self, **changes)

    def steps_for(self, num_samples: int) -> int:
        """Mini-batches per epoch for a data set of ``num_samples`` images."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        return max(1, min(num_samples, self.samples_per_epoch) // self.batch_size)

    def validate(self, num_samples: int) -> None:
        """Refuse settings that cannot run, with a sentence the user understands."""
        checks = [
            (self.method in MASK_METHODS, f"Method must be one of {', '.join(MASK_METHODS)}, not {self.method!r}."),
            (self.engine in ENGINES, f"Engine must be one of {', '.join(ENGINES)}, not {self.engine!r}."),
            (
                num_samples >= MIN_SAMPLES,
                f"The data holds {num_samples} sample(s); a scan needs at least {MIN_SAMPLES} clean images.",
            ),
            (1 <= self.epochs <= 100_000, f"Epochs must be between 1 and 100000, not {self.epochs}."),
            (self.batch_size >= 1, f"Batch size must be at least 1, not {self.batch_size}."),
            (
                self.batch_size <= num_samples,
                f"Batch size {self.batch_size} is larger than the {num_samples} samples in the data.",
            ),
            (self.steps_per_epoch is None or self.steps_per_epoch >= 1, "Steps per epoch must be at least 1."),
            (self.samples_per_epoch >= 1, "Samples per epoch must be at least 1."),
            (0 < self.learning_rate <= 10, f"Learning rate must be in (0, 10], not {self.learning_rate}."),
            (0 <= self.beta_1 < 1 and 0 <= self.beta_2 < 1, "Adam's betas must be in [0, 1)."),
            (self.init_cost > 0, "The initial cost (lambda) must be above 0."),
            (0 < self.attack_succ_threshold <= 1, "The attack success threshold must be in (0, 1]."),
            (self.patience >= 1 and self.early_stop_patience >= 1, "Patience values must be at least 1."),
            (0 <= self.confirm_runs <= 10, f"Confirmation runs must be between 0 and 10, not {self.confirm_runs}."),
            (self.screen_epochs >= 0, f"Screen epochs must be 0 (no screen) or more, not {self.screen_epochs}."),
            (
                1 <= self.classes_per_step <= 1024,
                f"Classes per step must be between 1 and 1024, not {self.classes_per_step}.",
            ),
            (
                self.classes_per_step == 1 or (self.engine == "keras" and self.method == "neural-cleanse"),
                "Several classes per step need the keras engine and the neural-cleanse method.",
            ),
            (self.cost_multiplier_up > 1 and self.cost_multiplier_down > 1, "Cost multipliers must be above 1."),
            (0 <= self.threads <= 64, f"Threads must be between 0 (one per core) and 64, not {self.threads}."),
            (
                0 <= self.margin_steps <= 100_000,
                f"Max-margin steps must be between 0 (off) and 100000, not {self.margin_steps}.",
            ),
            (1 <= self.margin_starts <= 256, f"Max-margin starts must be between 1 and 256, not {self.margin_starts}."),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidParameterError(message)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochRecord:
    """One epoch of history: the means the schedule saw, and the lambda it used."""

    epoch: int
    loss: float
    ce: float
    l1: float
    asr: float
    lam: float


@dataclass
class TriggerResult:
    """What reverse-engineering one class found.

    ``mask`` is ``(H, W)`` (``(H, W, C)`` for plain), ``pattern`` ``(H, W, C)`` in unit pixels.
    ``l1`` is the mask's size in pixels; ``asr`` the attack success of this trigger on clean
    samples of the other classes (evaluated after training; NaN when not evaluated);
    ``reached_threshold`` says whether any epoch reached the attack success threshold (if not,
    the mask is the last one, not a minimal one). ``runs_l1`` lists the L1 of every independent
    run when the class was confirmed by restarts (this result is the median one).

    ``stopped_early`` says the schedule's early stop ended the run (the best mask had stalled);
    otherwise the epoch budget did, and ``shrink`` is how much the best L1 still fell over the
    last ``early_stop_patience`` epochs (0 = flat, 1 = it only just reached the threshold).
    ``converged`` is the verdict's precondition: the threshold was reached and the mask had
    stopped shrinking (see :func:`converged`).

    ``full_schedule`` is False for a class a scan only screened (:mod:`nc_core.detection.screen`): its run
    stopped after the screen's epochs because it could not change the verdict. ``screen_l1`` is
    the L1 the screen found (NaN without a screen); ``budget_reference`` marks the classes run in
    full to measure how much a screened mask would still have shrunk.
    """

    target: int
    method: str
    engine: str
    mask: np.ndarray
    pattern: np.ndarray
    l1: float
    asr: float
    train_asr: float
    reached_threshold: bool
    epochs: int
    steps: int
    seconds: float
    history: list[EpochRecord] = field(default_factory=list)
    runs_l1: list[float] = field(default_factory=list)
    stopped_early: bool = False
    shrink: float = 0.0
    converged: bool = True
    full_schedule: bool = True
    screen_l1: float = float("nan")
    budget_reference: bool = False


#: A run that ended on its epoch budget still counts as converged when its best L1 fell by at
#: most this share over the last ``early_stop_patience`` epochs.
CONVERGED_SHRINK = 0.05


def recent_shrink(best_l1: list[float], window: int) -> float:
    """How much the best L1 fell over the last ``window`` epochs, as a share of where it was.

    ``best_l1`` is the best-so-far L1 after each epoch (``inf`` before the threshold was first
    reached). 1.0 when the threshold was first reached inside the window: nothing says the mask
    had settled.

    >>> round(recent_shrink([math.inf, 50.0, 40.0, 39.0, 39.0], window=2), 3)
    0.025
    """
    if not best_l1 or not math.isfinite(best_l1[-1]):
        return 1.0
    if len(best_l1) <= window:
        return 1.0
    before = best_l1[-1 - window]
    return 1.0 if not math.isfinite(before) else max(0.0, 1.0 - best_l1[-1] / before)


def converged(reached: bool, stopped_early: bool, shrink: float, penalised: bool = True) -> bool:
    """Whether a class's mask can be trusted as (close to) the smallest trigger it needs.

    It must have reached the attack success threshold, and either been stopped by the schedule's
    own early stop or have stopped shrinking (at most ``CONVERGED_SHRINK``) before the budget
    ran out. The plain objective has no mask penalty, so reaching the threshold is all it can do.
    """
    if not reached:
        return False
    return not penalised or stopped_early or shrink <= CONVERGED_SHRINK


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

    >>> schedule = LambdaSchedule(CleanseConfig()); schedule.update(asr=1.0, best_l1=40.0)
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


class TargetRun:
    """One class's optimisation, fed one epoch at a time: the lambda schedule, the best mask, the stop.

    The engines only run epochs; a driver asks a run for its ``lam``, runs an epoch with it and
    hands the metrics back to :meth:`record`, until the run is ``finished``. So one class at a time
    (:func:`reverse_target`) and many classes in one batched step (:mod:`nc_core.optimise.batched`) follow
    exactly the same schedule.

        >>> run = TargetRun(33, CleanseConfig(), steps=10)
        >>> while not run.finished: run.record(engine.run_epoch(run.lam, 10), engine.current_trigger)
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
