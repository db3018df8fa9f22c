"""The scan: which classes to optimise, in what order, how long, and what their results mean.

:func:`scan` takes a classifier (probabilities out, see :func:`nc_core.loading.models.as_classifier`)
and a :class:`~nc_core.loading.data.Dataset`, and returns plain data. It runs the max-margin test,
screens every class, gives the full schedule to the classes that could change the verdict, confirms
the close calls by restarts and hands the results to the detection rule; the optimisation itself is
:class:`~nc_core.optimise.runner.ReversalRunner`'s, which builds one engine per scan and reuses it
for every class, so the training step is traced once.

The MNIST sample, whose backdoor sends any digit stamped with a small checkerboard to 7, with
20 epochs a class instead of the product's 60 (about 5 s on 2 cores):

    >>> report = scan(classifier, data, config=CleanseConfig(epochs=20))
    >>> report.verdict, report.flagged
    ('backdoored', [7])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import keras

from nc_core import backend
from nc_core.detection.detect import DetectionRule
from nc_core.detection.margin import MarginConfig, MarginResult, max_margin_scan
from nc_core.detection.probe import (
    MEDIAN_SAMPLE,
    PROBE_CANDIDATES,
    easiest,
    margin_sample,
    median_sample,
    probe_epochs,
    probe_loss,
    probed,
)
from nc_core.detection.report import ScanReport, make_report
from nc_core.detection.samples import TriggeredSamples, triggered_samples
from nc_core.detection.screen import MIN_CLASSES_TO_SCREEN, REFERENCE_CLASSES, plan_full_runs
from nc_core.errors import RunCancelled
from nc_core.loading.data import Dataset
from nc_core.optimise.cluster import RayCluster
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.progress import CancelToken, EventCallback, ScanProgress
from nc_core.optimise.ray_runner import RayReversalRunner
from nc_core.optimise.results import TriggerResult
from nc_core.optimise.runner import ReversalRunner, ScanRunner, check_classes
from nc_core.optimise.schedule import Reversal

MIN_CLASSES_TO_CONFIRM = 3
#: Classes whose first-pass score reaches this (1 = flagged) are confirmed by restarts: the
#: flagged ones and those close to the line, where one lucky or unlucky start decides.
CONFIRM_SCORE = 0.75
CONFIRM_SEED_STEP = 7919


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
    ray: RayCluster | str | None = None,
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
    class unless ``config.margin_steps`` is 0 (on a Ray cluster it runs as one more task, beside
    the classes); ``margin`` is its result from an interrupted run to resume from, and
    ``on_margin`` receives it as soon as it is known. The report fuses both methods
    (:mod:`nc_core.detection.fusion`).

    ``on_samples`` receives, with each finished class, a few clean samples of other classes
    stamped with its trigger and the model's predictions (:mod:`nc_core.detection.samples`): a
    stored run shows them without loading the model again.

    ``ray`` runs the classes as Ray tasks (:mod:`nc_core.optimise.ray_runner`): ``"local:N"`` on a
    local cluster of N workers, or the address of a running cluster (:class:`RayCluster`). Each
    class finds the same trigger as in this process; only where it runs, and the report's
    ``device``, change.
    """
    started = time.perf_counter()
    num_classes = int(classifier.output_shape[-1])
    targets = check_classes(range(num_classes) if classes is None else classes, num_classes)
    config.validate(len(data))
    results = {r.target: r for r in done if r.target in targets}
    progress = ScanProgress(on_event, config.steps_for(len(data)))
    runner = make_runner(classifier, data, config, progress, cancel, ray)
    screen = screen_epochs(config, len(targets))
    probe = probe_epochs(config, len(targets), screen)
    confirming = config.confirm_runs if len(targets) >= MIN_CLASSES_TO_CONFIRM else 0
    reserve = [config.epochs] * confirming  # restarts of one close call, expected

    def keep(result: TriggerResult) -> None:
        results[result.target] = result
        if on_result is not None:
            on_result(result)
        if on_samples is not None:
            on_samples(triggered_samples(classifier, data, result, forward=runner.forward))

    def margin_found(result: MarginResult) -> None:
        nonlocal margin
        margin = result
        if on_margin is not None:
            on_margin(result)

    cancelled = False
    try:
        if margin is None and config.margin_steps > 0:
            progress.phase = "margin"
            runner.start_side_task(MarginTask(config), margin_found)
        todo = [t for t in targets if t not in results]
        full_runs = [config.epochs] * (REFERENCE_CLASSES + 1) * bool(screen) + reserve
        if probe:
            progress.plan([probe] * len(todo) + [screen] * (MEDIAN_SAMPLE + PROBE_CANDIDATES) + full_runs)
            progress.phase = "probe"
            sample = median_sample(targets, config.seed)
            losses = {t: probe_loss(r) for t, r in results.items() if r.probe_only}

            def probe_done(reversal: Reversal, result: TriggerResult) -> None:
                keep(probed(result))
                losses[result.target] = probe_loss(result)
                runner.keep_checkpoints(set(sample) | set(easiest(losses, sample)))  # noqa: B023

            runner.run([runner.reversal(t, probe) for t in todo], probe_done)
            todo = [t for t in sample + easiest(losses, sample) if results[t].probe_only]
        else:
            sample = targets
            progress.plan([screen or config.epochs] * len(todo) + full_runs)
        reversals = [runner.reversal(t, screen or config.epochs) for t in todo]
        if probe:
            progress.replan([reversal.epochs_left for reversal in reversals] + full_runs)
        progress.phase = "screen" if screen else "full"
        runner.run(
            reversals,
            lambda reversal, result: keep(
                screened(result, reversal.target in sample) if screen else result  # noqa: B023 (called at once)
            ),
        )
        while screen and any(not r.full_schedule for r in results.values()):
            candidates, references = plan_full_runs(list(results.values()), rule)
            if not candidates and not references:
                break
            reversals = [runner.reversal(t, config.epochs) for t in candidates + references]
            progress.phase = "full"
            progress.replan([reversal.epochs_left for reversal in reversals] + reserve)
            runner.run(
                reversals,
                lambda reversal, full: keep(
                    completed(
                        results[reversal.target],
                        full,
                        reversal.target in references,  # noqa: B023 (called within this iteration)
                        reversal.resume is not None,
                    )
                ),
            )
        if confirming:
            suspects = close_calls(make_report(list(results.values()), model_name, "", rule=rule))
            progress.replan([config.epochs] * len(suspects) * confirming)
            progress.phase = "confirm"
            restarts: dict[int, list[TriggerResult]] = {t: [results[t]] for t in suspects}
            reversals = [
                runner.reversal(t, config.epochs, seed_offset=CONFIRM_SEED_STEP * (i + 1))
                for t in suspects
                for i in range(confirming)
            ]

            def restarted(reversal: Reversal, result: TriggerResult) -> None:
                restarts[reversal.target].append(result)
                if len(restarts[reversal.target]) == confirming + 1:
                    keep(median_run(restarts[reversal.target]))

            runner.run(reversals, restarted)
        runner.wait_side_tasks()
    except RunCancelled:
        cancelled = True
    finally:
        runner.close()
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
        backend=backend.backend_name(),
        device=runner.device,
    )


def make_runner(
    classifier: keras.Model,
    data: Dataset,
    config: CleanseConfig,
    progress: ScanProgress,
    cancel: CancelToken | None,
    ray: RayCluster | str | None = None,
) -> ScanRunner:
    """The runner of a scan's classes: in this process, or as Ray tasks where ``ray`` says."""
    if ray is None:
        return ReversalRunner(classifier, data, config, progress, cancel)
    cluster = ray if isinstance(ray, RayCluster) else RayCluster.parse(ray)
    return RayReversalRunner(classifier, data, config, progress, cancel, cluster)


def run_margin(
    classifier: keras.Model,
    data: Dataset,
    config: CleanseConfig,
    cancel: CancelToken | None,
) -> MarginResult | None:
    """The max-margin detector over every class, as ``config`` sets it (None when it is off).

    A model of very many classes has its margins probed first and searched in full only on a
    random sample and the probe's leaders, as its Neural Cleanse runs are
    (:mod:`nc_core.detection.probe`), unless ``config.probe_epochs`` is 0."""
    if config.margin_steps <= 0:
        return None
    sample = margin_sample(config, int(classifier.output_shape[-1]))
    return max_margin_scan(
        classifier,
        data.pixel_range,
        MarginConfig(config.margin_starts, config.margin_steps, seed=config.seed),
        cancel=cancel,
        sample=sample,
        candidates=0 if sample is None else PROBE_CANDIDATES,
    )


@dataclass(frozen=True)
class MarginTask:
    """The max-margin test as a scan runner runs it beside the classes: at once in this process,
    or as a task on a Ray worker (so it travels as plain, picklable settings)."""

    config: CleanseConfig

    def __call__(self, classifier: keras.Model, data: Dataset, cancel: CancelToken | None) -> MarginResult | None:
        return run_margin(classifier, data, self.config, cancel)

    def __str__(self) -> str:
        return "The scan's max-margin test"


def screen_epochs(config: CleanseConfig, num_classes: int) -> int:
    """The screen's epochs for a scan of ``num_classes`` classes; 0 when every class runs in full."""
    if config.screen_epochs <= 0 or config.screen_epochs >= config.epochs or num_classes < MIN_CLASSES_TO_SCREEN:
        return 0
    return config.screen_epochs


def screened(result: TriggerResult, median_sample: bool = True) -> TriggerResult:
    """A screen run as the report keeps it: not a full schedule, unless the schedule ended by itself.

    ``median_sample`` is False for a class a probe chose for being easy to reach, outside the
    random sample the median is measured on (:mod:`nc_core.detection.probe`).
    """
    if result.stopped_early:
        return replace(result, median_sample=median_sample)
    return replace(result, full_schedule=False, screen_l1=result.l1, median_sample=median_sample)


def completed(screen: TriggerResult, full: TriggerResult, reference: bool, resumed: bool) -> TriggerResult:
    """A class's full-schedule run: continued from its screen, or replayed from scratch (an engine
    without snapshots, a resumed scan), when the screen's steps and time count as well."""
    extra = {} if resumed else dict(steps=screen.steps + full.steps, seconds=screen.seconds + full.seconds)
    return replace(full, screen_l1=screen.l1, budget_reference=reference, median_sample=screen.median_sample, **extra)


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
        median_sample=first.median_sample,
        seconds=sum(r.seconds for r in runs),
        steps=sum(r.steps for r in runs),
    )
