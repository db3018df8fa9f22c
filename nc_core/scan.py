"""The public entry points: reverse-engineer one class, or scan every class and detect.

Both take a classifier (probabilities out, see :func:`nc_core.models.as_classifier`) and a
:class:`~nc_core.data.Dataset`, and return plain data. One engine is built per call and reused
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

from nc_core.cleanse import CleanseConfig, TriggerResult, reverse_target
from nc_core.data import Dataset
from nc_core.detect import DetectionRule
from nc_core.errors import InvalidParameterError, RunCancelled
from nc_core.models import predict
from nc_core.progress import CancelToken, EventCallback
from nc_core.report import ScanReport, make_report
from nc_core.masks import stamp

ASR_EVAL_SAMPLES = 2000
MIN_CLASSES_TO_CONFIRM = 3
#: Classes whose first-pass score reaches this (1 = flagged) are confirmed by restarts: the
#: flagged ones and those close to the line, where one lucky or unlucky start decides.
CONFIRM_SCORE = 0.75
CONFIRM_SEED_STEP = 7919


def attack_success_rate(
    classifier: keras.Model, data: Dataset, mask: np.ndarray, pattern: np.ndarray, target: int
) -> float:
    """Share of clean samples of *other* classes that the trigger sends to ``target``.

    >>> attack_success_rate(classifier, dataset, result.mask, result.pattern, 33)
    0.998
    """
    others = np.flatnonzero(data.y != target)[:ASR_EVAL_SAMPLES]
    if others.size == 0:
        return float("nan")
    triggered = data.pixel_range.from_unit(stamp(data.x[others], mask, pattern))
    return float(np.mean(predict(classifier, triggered).argmax(axis=1) == target))


def make_engine(classifier: keras.Model, data: Dataset, config: CleanseConfig):
    """The engine the config names, ready to optimise triggers on ``data``."""
    if config.engine == "legacy":
        from nc_core.legacy import LegacyEngine as engine_class
    else:
        from nc_core.engine import KerasEngine as engine_class
    return engine_class(classifier, data.x, data.pixel_range, method=config.method,
                        batch_size=config.batch_size, learning_rate=config.learning_rate,
                        beta_1=config.beta_1, beta_2=config.beta_2)


def _check_classes(classes: Sequence[int], num_classes: int) -> list[int]:
    chosen = [int(c) for c in classes]
    if not chosen:
        raise InvalidParameterError("Choose at least one class to scan.")
    bad = [c for c in chosen if not 0 <= c < num_classes]
    if bad:
        raise InvalidParameterError(
            f"Class {bad[0]} is out of range: the model has classes 0 to {num_classes - 1}."
        )
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
        engine, target, config, len(data), on_event, cancel,
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
) -> ScanReport:
    """Reverse-engineer every class in ``classes`` (all by default), then run the MAD test.

    A cancel stops within one step and returns a report of the classes already finished, with
    ``cancelled=True``. ``done`` carries results of an earlier, interrupted run to resume from;
    ``on_result`` receives each class as it finishes (the dashboard stores it at once).

    With ``config.confirm_runs`` > 0, every class the first pass flags or nearly flags (score at
    least ``CONFIRM_SCORE``) is optimised that many more times from fresh random starts, and its
    mask becomes the median of its runs before the final test: a lucky minimum in one run is not
    a backdoor, a real trigger is found every time. ``rule`` is the detection rule
    (:mod:`nc_core.detect`).
    """
    started = time.perf_counter()
    num_classes = int(classifier.output_shape[-1])
    targets = _check_classes(range(num_classes) if classes is None else classes, num_classes)
    config.validate(len(data))
    results = {r.target: r for r in done if r.target in targets}
    engine = make_engine(classifier, data, config)

    def run(target: int, index: int, total: int, seed_offset: int = 0) -> TriggerResult:
        return reverse_target(
            engine, target, config.replace(seed=config.seed + seed_offset), len(data), on_event, cancel,
            evaluate_asr=lambda m, p: attack_success_rate(classifier, data, m, p, target),
            class_index=index, num_classes=total,
        )

    def keep(result: TriggerResult) -> None:
        results[result.target] = result
        if on_result is not None:
            on_result(result)

    cancelled = False
    try:
        for index, target in enumerate(targets):
            if target not in results:
                keep(run(target, index, len(targets)))
        if config.confirm_runs and len(targets) >= MIN_CLASSES_TO_CONFIRM:
            suspects = close_calls(make_report(list(results.values()), model_name, "", rule=rule))
            total = len(targets) + len(suspects) * config.confirm_runs
            for k, target in enumerate(suspects):
                runs = [results[target]]
                for i in range(config.confirm_runs):
                    index = len(targets) + k * config.confirm_runs + i
                    runs.append(run(target, index, total, seed_offset=CONFIRM_SEED_STEP * (i + 1)))
                keep(median_run(runs))
    except RunCancelled:
        cancelled = True
    return make_report(
        list(results.values()), model=model_name, data=data.source, pixel_range=data.pixel_range.label,
        config=config.to_dict(), class_names=data.class_names,
        seconds=time.perf_counter() - started, cancelled=cancelled, rule=rule,
    )


def close_calls(report: ScanReport) -> list[int]:
    """Classes flagged or close to it that have not been confirmed by restarts yet."""
    return [row.class_id for row in report.rows
            if row.reached_threshold and row.score >= CONFIRM_SCORE and len(report.result_for(row.class_id).runs_l1) <= 1]


def median_run(runs: list[TriggerResult]) -> TriggerResult:
    """The run with the median L1 among independent restarts of one class, knowing all their L1s.

    A single optimisation can land in an unusually good minimum; the median of several restarts
    is what a class reliably needs, and its mask is the one shown.
    """
    ordered = sorted(runs, key=lambda r: r.l1)
    chosen = ordered[(len(ordered) - 1) // 2]
    return replace(chosen, runs_l1=[r.l1 for r in runs],
                   seconds=sum(r.seconds for r in runs), steps=sum(r.steps for r in runs))
