"""Repair a model a scan flagged, measure it before and after on held-out data, and re-scan it.

The MNIST sample's repair with the product's settings, the real trigger (from its model card)
measured but never trained on; the re-scan no longer finds a backdoor:

>>> from nc_core.repair.triggers import trigger_from_card
>>> repaired = repair(model, data, report, RepairConfig(), known=trigger_from_card(card, (28, 28, 1)))
>>> repaired.before.known_asr, repaired.after.known_asr, repaired.after.clean_accuracy
(1.0, 0.0..., 0.97...)
>>> rescan(repaired, data, report).verdict
'clean'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import keras
import numpy as np

from nc_core.detection.report import ScanReport
from nc_core.errors import RepairFailedError
from nc_core.loading.data import Dataset
from nc_core.loading.models import ModelInfo, as_classifier
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.progress import CancelToken, EventCallback
from nc_core.repair.config import RepairConfig
from nc_core.repair.evaluation import Figures, measure, split_holdout
from nc_core.repair.pruning import prune
from nc_core.repair.triggers import RepairTrigger, check_trigger, triggers_to_remove
from nc_core.repair.unlearning import trainable_copy, unlearn, weights_copy

#: ``on_progress(fraction, message)``: the share of the repair done and what runs now.
ProgressCallback = Callable[[float, str], None]


@dataclass
class RepairRound:
    """One pass: the trigger of ``target`` found on the model entering it (its mask size) and
    whether it was still small enough to stand out, and so was removed in this round."""

    round: int
    target: int
    l1: float
    removed: bool


@dataclass
class RescanSummary:
    """What a repair's re-scan concluded, as ``RepairResult.rescan`` stores it (the schema
    :func:`nc_core.schema.check_document` checks an imported repair record against)."""

    verdict: str
    flagged: list[int]
    score: float
    anomaly_index: float
    reason: str = ""


@dataclass
class RepairResult:
    """A repaired model and the evidence: figures before and after on the held-out samples,
    the rounds run, and (after :func:`rescan`) the verdict a scan now gives it."""

    model: keras.Model = field(repr=False, metadata={"stored": False})  # saved on its own, not in repair.json
    method: str
    targets: list[int]
    before: Figures
    after: Figures
    rounds: list[RepairRound]
    bound: float
    config: dict
    samples_tuned: int
    samples_held_out: int
    seconds: float
    pruned_units: list[int] = field(default_factory=list)
    known_trigger: str | None = None
    rescan: RescanSummary | None = None

    def to_dict(self) -> dict:
        """JSON-ready figures (the model is saved on its own)."""
        payload = {k: v for k, v in asdict(self).items() if k not in ("model", "before", "after")}
        return {**payload, "before": self.before.to_dict(), "after": self.after.to_dict()}

    @classmethod
    def from_dict(cls, payload: dict, model: keras.Model | None = None) -> RepairResult:
        fields = {k: v for k, v in payload.items() if k not in ("before", "after", "rounds")}
        rescan = RescanSummary(**payload["rescan"]) if payload.get("rescan") is not None else None
        fields.pop("rescan", None)
        return cls(
            model=model,
            before=Figures.from_dict(payload["before"]),
            after=Figures.from_dict(payload["after"]),
            rounds=[RepairRound(**r) for r in payload["rounds"]],
            rescan=rescan,
            **fields,
        )

    @property
    def accuracy_drop(self) -> float:
        """Clean accuracy lost on the held-out samples (negative when it rose)."""
        return float(self.before.clean_accuracy - self.after.clean_accuracy)

    @property
    def within_budget(self) -> bool:
        """Whether the clean accuracy lost stays within the repair's ``max_accuracy_drop``."""
        budget = float(self.config.get("max_accuracy_drop", RepairConfig.max_accuracy_drop))
        return self.accuracy_drop <= budget + 1e-9

    def table(self) -> list[dict]:
        """Before/after rows for the UI, the report and the CLI (one computation, shown everywhere)."""
        rows = [{"figure": "clean accuracy", "before": self.before.clean_accuracy, "after": self.after.clean_accuracy}]
        for target in self.targets:
            rows.append(
                {
                    "figure": f"attack success, reversed trigger of class {target}",
                    "before": self.before.reversed_asr.get(target),
                    "after": self.after.reversed_asr.get(target),
                }
            )
        if self.before.known_asr is not None:
            rows.append(
                {
                    "figure": f"attack success, real trigger ({self.known_trigger})",
                    "before": self.before.known_asr,
                    "after": self.after.known_asr,
                }
            )
        return rows


def removal_bound(report: ScanReport, targets: list[int], max_ratio: float) -> float:
    """The mask size below which a class still stands out: ``max_ratio`` of the median judged L1
    of the scan's other classes."""
    others = [row.judged_l1 for row in report.rows if row.class_id not in targets]
    return float(max_ratio * np.median(others)) if others else 0.0


def repair(
    model: keras.Model,
    data: Dataset,
    report: ScanReport,
    config: RepairConfig = RepairConfig(),
    known: RepairTrigger | None = None,
    force: bool = False,
    outputs_probabilities: bool = True,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RepairResult:
    """Remove the backdoor ``report`` found from a copy of ``model``; ``data`` is labelled and clean.

    ``model`` is left untouched. ``known`` (the real trigger, if the user has it) is measured,
    never trained on. Raises :class:`~nc_core.errors.RunCancelled` when cancelled.
    """
    started = time.perf_counter()
    triggers = triggers_to_remove(report, force)
    num_classes = int(model.output_shape[-1])
    config.validate(len(data), num_classes)
    for trigger in triggers:
        check_trigger(trigger, data.x.shape[1:], num_classes, f"the report's trigger of class {trigger.target}")
    if known is not None:
        check_trigger(known, data.x.shape[1:], num_classes, "the real trigger")
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    tune_idx, held_idx = split_holdout(data.y, config.holdout_share, config.seed)
    tune, held_out = data.subset(tune_idx), data.subset(held_idx)
    triggers = _blends_for_margin_findings(triggers, report, model, tune, outputs_probabilities, config, cancel)
    targets = [t.target for t in triggers]
    bound = removal_bound(report, targets, config.max_ratio)
    progress = _Progress(on_progress, config)
    before = measure(model, held_out, triggers, known)
    repaired = trainable_copy(model)
    removing = [t for t in triggers if t.target in report.flagged or t.l1 < bound]
    rounds = [RepairRound(0, t.target, t.l1, t in removing) for t in triggers]
    pruned: list[int] = []
    for round_index in range(config.max_rounds):
        if round_index == 0 and removing and config.restarts:
            restarts = _reverse_again(
                repaired,
                tune,
                [t.target for t in removing],
                report,
                config,
                0,
                outputs_probabilities,
                cancel,
                runs=config.restarts,
            )
            rounds += [RepairRound(0, t.target, t.l1, True) for t in restarts]
            removing += restarts
        elif round_index > 0:
            found = _reverse_again(repaired, tune, targets, report, config, round_index, outputs_probabilities, cancel)
            progress.reversed(round_index)
            still = [t for t in found if t.l1 < bound]
            rounds += [RepairRound(round_index, t.target, t.l1, t in still) for t in found]
            if not still:
                break
            removing += still
        if not removing:
            break  # nothing stands out (a forced repair of a clean model): the model stays as it was
        if config.method == "pruning":
            pruned += prune(repaired, tune, removing, config, lambda f: progress.step(round_index, f), cancel)  # noqa: B023 (called within this iteration)
        else:
            unlearn(
                repaired,
                tune,
                removing,
                config,
                not outputs_probabilities,
                rng,
                lambda e: progress.step(round_index, e / config.epochs),  # noqa: B023 (called within this iteration)
                cancel,
            )
    repaired = weights_copy(repaired)  # without the fine-tune's optimizer, BatchNorm as it was saved
    _check_finite(repaired, config)
    after = measure(repaired, held_out, triggers, known)
    progress.done()
    return RepairResult(
        repaired,
        config.method,
        targets,
        before,
        after,
        rounds,
        bound,
        config.to_dict(),
        len(tune_idx),
        len(held_idx),
        time.perf_counter() - started,
        pruned,
        known.source if known is not None else None,
    )


def _check_finite(model: keras.Model, config: RepairConfig) -> None:
    """A fine-tune that diverged leaves NaN or infinite weights: such a model must never be written."""
    if not all(np.isfinite(weights).all() for weights in model.get_weights()):
        raise RepairFailedError(
            f"The repair diverged: the repaired model has weights that are not finite numbers, so nothing was "
            f"kept. Try a lower learning rate (now {config.learning_rate:g})."
        )


def _blends_for_margin_findings(
    triggers: list[RepairTrigger],
    report: ScanReport,
    model: keras.Model,
    data: Dataset,
    outputs_probabilities: bool,
    config: RepairConfig,
    cancel: CancelToken | None,
) -> list[RepairTrigger]:
    """The triggers to unlearn, with a whole-image blend (:mod:`nc_core.repair.blend`) in place of
    Neural Cleanse's mask for each class that only the max-margin test flagged: its small mask is
    not what the backdoor answers to."""
    from nc_core.detection.fusion import MAX_MARGIN
    from nc_core.repair.blend import reverse_blend

    only_margin = {int(c) for c, methods in report.flagged_by.items() if methods == [MAX_MARGIN]}
    if not only_margin.intersection(t.target for t in triggers):
        return triggers
    classifier = _probabilities(weights_copy(model), outputs_probabilities)
    classifier.trainable = False
    return [
        reverse_blend(classifier, data, t.target, seed=config.seed, cancel=cancel) if t.target in only_margin else t
        for t in triggers
    ]


def _reverse_again(
    model: keras.Model,
    data: Dataset,
    targets: list[int],
    report: ScanReport,
    config: RepairConfig,
    round_index: int,
    outputs_probabilities: bool,
    cancel: CancelToken | None,
    runs: int = 1,
) -> list[RepairTrigger]:
    """Each target's smallest trigger on the model as repaired so far (on a copy), from
    ``runs`` random starts each (seeds differ by round and run)."""
    from nc_core.optimise.runner import reverse_engineer

    classifier = _probabilities(weights_copy(model), outputs_probabilities)  # the engine freezes it
    cleanse = CleanseConfig(**report.config).replace(screen_epochs=0, classes_per_step=1)
    found = []
    for run in range(runs):
        for target in targets:
            seed = config.seed + 1 + round_index * 100 + run
            result = reverse_engineer(classifier, data, target, cleanse.replace(seed=seed), cancel=cancel)
            mask = result.mask.max(axis=-1) if result.mask.ndim == 3 else result.mask
            found.append(RepairTrigger(target, mask, result.pattern, source=f"reversed in round {round_index}"))
    return found


def _probabilities(model: keras.Model, outputs_probabilities: bool) -> keras.Model:
    shape = tuple(int(d) for d in model.input_shape[1:])
    info = ModelInfo(shape, int(model.output_shape[-1]), 0, outputs_probabilities, model.name)
    return as_classifier(model, info)


def rescan(
    result: RepairResult,
    data: Dataset,
    report: ScanReport,
    outputs_probabilities: bool = True,
    on_event: EventCallback | None = None,
    cancel: CancelToken | None = None,
    model_name: str = "repaired model",
    on_result: Callable[[object], None] | None = None,
    on_samples: Callable[[object], None] | None = None,
) -> ScanReport:
    """Scan the repaired model with the original scan's settings, classes and rule; the verdict
    and score land in ``result.rescan`` too. ``on_result`` and ``on_samples`` are
    :func:`~nc_core.detection.scan.scan`'s."""
    from nc_core.detection.scan import scan

    classifier = _probabilities(result.model, outputs_probabilities)
    classifier.trainable = False
    new = scan(
        classifier,
        data,
        [row.class_id for row in report.rows],
        CleanseConfig(**report.config),
        on_event=on_event,
        cancel=cancel,
        model_name=model_name,
        rule=report.rule,
        on_result=on_result,
        on_samples=on_samples,
    )
    result.rescan = RescanSummary(
        verdict=new.verdict,
        flagged=list(new.flagged),
        score=float(new.score),
        anomaly_index=float(new.anomaly_index),
        reason=new.verdict_reason,
    )
    return new


class _Progress:
    """Fractions for a repair: each round's training, and the reversal that opens the next."""

    def __init__(self, callback: ProgressCallback | None, config: RepairConfig):
        self.callback, self.rounds, self.done_fraction = callback, config.max_rounds, 0.0

    def _emit(self, fraction: float, message: str) -> None:
        self.done_fraction = max(self.done_fraction, min(fraction, 1.0))  # never backwards
        if self.callback is not None:
            self.callback(self.done_fraction, message)

    def step(self, round_index: int, within: float) -> None:
        self._emit((round_index + 0.5 + 0.5 * within) / self.rounds, f"round {round_index + 1}: removing the triggers")

    def reversed(self, round_index: int) -> None:
        self._emit((round_index + 0.5) / self.rounds, f"round {round_index + 1}: triggers reverse-engineered again")

    def done(self) -> None:
        self._emit(1.0, "repair finished")
