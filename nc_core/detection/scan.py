"""The public entry points: reverse-engineer one class, or scan every class and detect.

Both take a classifier (probabilities out, see :func:`nc_core.loading.models.as_classifier`) and a
:class:`~nc_core.loading.data.Dataset`, and return plain data. One engine is built per call and reused
for every class, so the training step is traced once.

    >>> report = scan(classifier, dataset, config=CleanseConfig(epochs=30))
    >>> report.verdict
    'backdoored'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import keras
import numpy as np
import tensorflow as tf

from nc_core.detection.detect import DetectionRule
from nc_core.detection.margin import MarginConfig, MarginResult, max_margin_scan
from nc_core.detection.report import ScanReport, make_report
from nc_core.detection.samples import TriggeredSamples, triggered_samples
from nc_core.detection.screen import MIN_CLASSES_TO_SCREEN, REFERENCE_CLASSES, plan_full_runs
from nc_core.errors import InvalidParameterError, RunCancelled
from nc_core.loading.data import Dataset
from nc_core.loading.models import compiled_forward, predict
from nc_core.optimise.batched import BatchedEngine, Job, run_batched
from nc_core.optimise.cleanse import Checkpoint, CleanseConfig, TriggerResult, reverse_target
from nc_core.optimise.masks import stamp
from nc_core.optimise.progress import CancelToken, EventCallback, ScanProgress
from nc_core.optimise.threads import auto_threads, run_on_threads

ASR_EVAL_SAMPLES = 2000
MIN_CLASSES_TO_CONFIRM = 3
#: Classes whose first-pass score reaches this (1 = flagged) are confirmed by restarts: the
#: flagged ones and those close to the line, where one lucky or unlucky start decides.
CONFIRM_SCORE = 0.75
CONFIRM_SEED_STEP = 7919


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

    >>> attack_success_rate(classifier, dataset, result.mask, result.pattern, 33)
    0.998
    """
    others = np.flatnonzero(data.y != target)[:ASR_EVAL_SAMPLES]
    if others.size == 0:
        return float("nan")
    triggered = data.pixel_range.from_unit(stamp(data.x[others], mask, pattern))
    return float(np.mean(predict(classifier, triggered, forward=forward).argmax(axis=1) == target))


def make_engine(classifier: keras.Model, data: Dataset, config: CleanseConfig, x_unit=None):
    """The engine the config names, ready to optimise triggers on ``data`` (or on ``x_unit``, the
    same images as one tensor that several keras engines share)."""
    if config.engine == "legacy":
        from nc_core.optimise.legacy import LegacyEngine as engine_class
    else:
        from nc_core.optimise.engine import KerasEngine as engine_class
    return engine_class(
        classifier,
        data.x if x_unit is None else x_unit,
        data.pixel_range,
        method=config.method,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
    )


def _check_classes(classes: Sequence[int], num_classes: int) -> list[int]:
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
    (target,) = _check_classes([target], num_classes)
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


def scan(
    classifier: keras.Model,
    data: Dataset,
    classes: Sequence[int] | None = None,
    config: CleanseConfig = CleanseConfig(),
    on_event: EventCallback | None = None,
    cancel: CancelToken | None = None,
    model_name: str = "model",
    done: Sequence[TriggerResult] = (),
    on_result: Callable[[TriggerResult], None] | None = None,
    rule: DetectionRule = DetectionRule(),
    margin: MarginResult | None = None,
    on_margin: Callable[[MarginResult], None] | None = None,
    on_samples: Callable[[TriggeredSamples], None] | None = None,
) -> ScanReport:
    """Reverse-engineer every class in ``classes`` (all by default), then run the MAD test.

    A cancel stops within one chunk of steps (:mod:`nc_core.optimise.steps`) and returns a report of
    the classes already finished, with
    ``cancelled=True``. ``done`` carries results of an earlier, interrupted run to resume from;
    ``on_result`` receives each class as it finishes (the dashboard stores it at once).

    With ``config.confirm_runs`` > 0, every class the first pass flags or nearly flags (score at
    least ``CONFIRM_SCORE``) is optimised that many more times from fresh random starts, and its
    mask becomes the median of its runs before the final test: a lucky minimum in one run is not
    a backdoor, a real trigger is found every time. ``rule`` is the detection rule
    (:mod:`nc_core.detection.detect`).

    With ``config.screen_epochs`` > 0 (and at least ``MIN_CLASSES_TO_SCREEN`` classes), every
    class is first screened for that many epochs, and only the classes that could change the
    verdict, plus a few reference classes, get the full schedule (:mod:`nc_core.detection.screen`).

    Before Neural Cleanse, the max-margin test (:mod:`nc_core.detection.margin`) runs over every
    class unless ``config.margin_steps`` is 0; ``margin`` is its result from an interrupted run to
    resume from, and ``on_margin`` receives it as soon as it is known. The report fuses both
    methods (:mod:`nc_core.detection.fusion`).

    ``on_samples`` receives, with each finished class, a few clean samples of other classes
    stamped with its trigger and the model's predictions (:mod:`nc_core.detection.samples`): a
    stored run shows them without loading the model again.
    """
    started = time.perf_counter()
    num_classes = int(classifier.output_shape[-1])
    targets = _check_classes(range(num_classes) if classes is None else classes, num_classes)
    config.validate(len(data))
    results = {r.target: r for r in done if r.target in targets}
    progress = ScanProgress(on_event, config.steps_for(len(data)))
    runner = JobRunner(classifier, data, config, progress, cancel)
    screen = screen_epochs(config, len(targets))
    confirming = config.confirm_runs if len(targets) >= MIN_CLASSES_TO_CONFIRM else 0
    reserve = [config.epochs] * confirming  # restarts of one close call, expected

    def keep(result: TriggerResult) -> None:
        results[result.target] = result
        if on_result is not None:
            on_result(result)
        if on_samples is not None:
            on_samples(triggered_samples(classifier, data, result, forward=runner.forward))

    cancelled = False
    try:
        if margin is None:
            margin = run_margin(classifier, data, config, cancel, progress)
            if margin is not None and on_margin is not None:
                on_margin(margin)
        todo = [t for t in targets if t not in results]
        progress.plan(
            [screen or config.epochs] * len(todo) + [config.epochs] * (REFERENCE_CLASSES + 1) * bool(screen) + reserve
        )
        progress.phase = "screen" if screen else "full"
        runner.run(
            [runner.job(t, screen or config.epochs) for t in todo],
            lambda job, result: keep(screened(result) if screen else result),
        )
        while screen and any(not r.full_schedule for r in results.values()):
            candidates, references = plan_full_runs(list(results.values()), rule)
            if not candidates and not references:
                break
            jobs = [runner.job(t, config.epochs) for t in candidates + references]
            progress.phase = "full"
            progress.replan([job.epochs_left for job in jobs] + reserve)
            runner.run(
                jobs,
                lambda job, full: keep(
                    completed(results[job.target], full, job.target in references, job.resume is not None)  # noqa: B023 (called within this iteration)
                ),
            )
        if confirming:
            suspects = close_calls(make_report(list(results.values()), model_name, "", rule=rule))
            progress.replan([config.epochs] * len(suspects) * confirming)
            progress.phase = "confirm"
            restarts: dict[int, list[TriggerResult]] = {t: [results[t]] for t in suspects}
            jobs = [
                runner.job(t, config.epochs, seed_offset=CONFIRM_SEED_STEP * (i + 1))
                for t in suspects
                for i in range(confirming)
            ]

            def restarted(job: Job, result: TriggerResult) -> None:
                restarts[job.target].append(result)
                if len(restarts[job.target]) == confirming + 1:
                    keep(median_run(restarts[job.target]))

            runner.run(jobs, restarted)
    except RunCancelled:
        cancelled = True
    return make_report(
        list(results.values()),
        model=model_name,
        data=data.source,
        pixel_range=data.pixel_range.label,
        config=config.to_dict(),
        class_names=data.class_names,
        seconds=time.perf_counter() - started,
        cancelled=cancelled,
        rule=rule,
        margin=margin,
    )


def run_margin(
    classifier: keras.Model,
    data: Dataset,
    config: CleanseConfig,
    cancel: CancelToken | None,
    progress: ScanProgress | None = None,
) -> MarginResult | None:
    """The max-margin detector over every class, as ``config`` sets it (None when it is off)."""
    if config.margin_steps <= 0:
        return None
    if progress is not None:
        progress.phase = "margin"
    return max_margin_scan(
        classifier,
        data.pixel_range,
        MarginConfig(config.margin_starts, config.margin_steps, seed=config.seed),
        cancel=cancel,
    )


class JobRunner:
    """Runs a scan's jobs: one class at a time, side by side on threads, or several per step;
    and keeps screen checkpoints.

    ``config.classes_per_step`` above 1 selects the batched engine (:mod:`nc_core.optimise.batched`);
    otherwise the keras engine runs on ``config.threads`` threads (:mod:`nc_core.optimise.threads`), one
    engine each. Either way each job reports its progress through ``progress`` and each result
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
        self.classifier, self.data, self.config = classifier, data, config
        self.progress, self.cancel = progress, cancel
        self.batched = config.classes_per_step > 1
        self.checkpoints: dict[int, Checkpoint] = {}
        self.forward = compiled_forward(classifier)
        if self.batched:
            self.engine = BatchedEngine(
                classifier,
                data.x,
                data.pixel_range,
                config.classes_per_step,
                config.batch_size,
                config.learning_rate,
                config.beta_1,
                config.beta_2,
            )
            return
        threads = auto_threads(config.threads) if config.engine == "keras" else 1
        shared = tf.constant(np.asarray(data.x, np.float32)) if threads > 1 else None
        self.engines = [make_engine(classifier, data, config, shared) for _ in range(threads)]
        if threads > 1:  # trace on this thread, before any worker thread calls them
            for engine in self.engines:
                engine.warm_up()
            predict(classifier, data.pixel_range.from_unit(data.x[:1]), forward=self.forward)

    def job(self, target: int, epochs: int, seed_offset: int = 0) -> Job:
        """Run ``target`` to ``epochs``, continuing its screen where one was kept (not for restarts)."""
        resume = self.checkpoints.pop(target, None) if not seed_offset else None
        return Job(
            target,
            self.config.replace(seed=self.config.seed + seed_offset, epochs=epochs),
            resume,
            keep_checkpoint=epochs < self.config.epochs,
        )

    def run(self, jobs: Sequence[Job], on_done: Callable[[Job, TriggerResult], None]) -> None:
        def events(job: Job) -> EventCallback:
            return self.progress.run(job.epochs_left, job.config.epochs - job.epochs_left + 1)

        def done(job: Job, result: TriggerResult, checkpoint: Checkpoint | None) -> None:
            if checkpoint is not None:
                self.checkpoints[job.target] = checkpoint
            on_done(job, result)

        if self.batched:
            run_batched(self.engine, jobs, len(self.data), done, events, self.cancel, self.asr)
        elif len(self.engines) > 1 and len(jobs) > 1:
            run_on_threads(self.engines, jobs, self.run_one, events, done, self.cancel)
        else:
            for job in jobs:
                done(job, *self.run_one(self.engines[0], job, events(job), self.cancel))

    def asr(self, target: int, mask: np.ndarray, pattern: np.ndarray) -> float:
        return attack_success_rate(self.classifier, self.data, mask, pattern, target, self.forward)

    def run_one(self, engine, job: Job, on_event: EventCallback, cancel) -> tuple[TriggerResult, Checkpoint | None]:
        """One job on ``engine``: its result, and its checkpoint when it is a screen's run."""
        kept: list[Checkpoint] = []
        result = reverse_target(
            engine,
            job.target,
            job.config,
            len(self.data),
            on_event,
            cancel,
            evaluate_asr=lambda m, p: self.asr(job.target, m, p),
            resume=job.resume,
            on_checkpoint=kept.append if job.keep_checkpoint else None,
        )
        return result, kept[0] if kept else None


def screen_epochs(config: CleanseConfig, num_classes: int) -> int:
    """The screen's epochs for a scan of ``num_classes`` classes; 0 when every class runs in full."""
    if config.screen_epochs <= 0 or config.screen_epochs >= config.epochs or num_classes < MIN_CLASSES_TO_SCREEN:
        return 0
    return config.screen_epochs


def screened(result: TriggerResult) -> TriggerResult:
    """A screen run as the report keeps it: not a full schedule, unless the schedule ended by itself."""
    if result.stopped_early:
        return result
    return replace(result, full_schedule=False, screen_l1=result.l1)


def completed(screen: TriggerResult, full: TriggerResult, reference: bool, resumed: bool) -> TriggerResult:
    """A class's full-schedule run: continued from its screen, or replayed from scratch (an engine
    without snapshots, a resumed scan), when the screen's steps and time count as well."""
    extra = {} if resumed else dict(steps=screen.steps + full.steps, seconds=screen.seconds + full.seconds)
    return replace(full, screen_l1=screen.l1, budget_reference=reference, **extra)


def close_calls(report: ScanReport) -> list[int]:
    """Classes flagged or close to it that have not been confirmed by restarts yet."""
    return [
        row.class_id
        for row in report.rows
        if row.reached_threshold
        and row.full_schedule
        and row.score >= CONFIRM_SCORE
        and len(report.result_for(row.class_id).runs_l1) <= 1
    ]


def median_run(runs: list[TriggerResult]) -> TriggerResult:
    """The run with the median L1 among independent restarts of one class, knowing all their L1s.

    A single optimisation can land in an unusually good minimum; the median of several restarts
    is what a class reliably needs, and its mask is the one shown.
    """
    ordered = sorted(runs, key=lambda r: r.l1)
    chosen = ordered[(len(ordered) - 1) // 2]
    first = runs[0]
    return replace(
        chosen,
        runs_l1=[r.l1 for r in runs],
        screen_l1=first.screen_l1,
        budget_reference=first.budget_reference,
        seconds=sum(r.seconds for r in runs),
        steps=sum(r.steps for r in runs),
    )
