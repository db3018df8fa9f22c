"""The result of a scan: per-class rows, the MAD statistics and the verdict, as plain data.

Every number a user sees (L1, anomaly index, ASR, verdict) is computed once, here, when the
report is made, and stored with it; the dashboard, the CLI and exported bundles all read these
stored values instead of recomputing them.

    >>> report = make_report(results, model="mnist_backdoored.keras", data="mnist_data.npz")
    >>> report.verdict, report.flagged, report.rows[7].flagged_by
    ('backdoored', [7], 'neural-cleanse')
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from nc_core.detection.detect import DetectionRule, anomaly_indices, detect, detection_l1, extreme_l1
from nc_core.detection.fusion import MAX_MARGIN, NEURAL_CLEANSE, finding_reason, fuse
from nc_core.detection.margin import MarginResult, margin_score, margin_statistics
from nc_core.detection.screen import SCREEN_SCORE, budget_scale, full_budget_l1, pessimistic_scores
from nc_core.detection.shape import boundary, compactness
from nc_core.optimise.config import CleanseConfig
from nc_core.optimise.results import EpochRecord, TriggerResult

REPORT_VERSION = 2
#: A median mask covering more than this share of the image is no minimal trigger: the
#: optimisation has not got anywhere (a 3-epoch MNIST scan leaves masks at 400+ of 784 pixels,
#: converged ones on the zoo's models are at 2-15 %).
MAX_PLAUSIBLE_SHARE = 0.25


@dataclass
class ClassRow:
    """One class of a scan, as shown in tables and printed by the CLI.

    ``anomaly_index`` is the paper's (raw MAD); ``log_index``, ``ratio`` (L1 over the median),
    ``compactness``, ``boundary`` and ``score`` are the product rule's evidence (:mod:`nc_core.detection.detect`), all
    computed on ``full_budget_l1``: the mask's own ``l1`` for a class that ran the full schedule,
    its L1 scaled by the report's ``budget_scale`` for one the scan only screened
    (``full_schedule`` False, :mod:`nc_core.detection.screen`). Defaults let older reports load.
    """

    class_id: int
    name: str
    l1: float
    anomaly_index: float
    asr: float
    flagged: bool
    reached_threshold: bool
    epochs: int
    seconds: float
    log_index: float = float("nan")
    ratio: float = float("nan")
    compactness: float = float("nan")
    score: float = float("nan")
    converged: bool = True
    stopped_early: bool = False
    steps: int = 0
    shrink: float = 0.0
    full_schedule: bool = True
    full_budget_l1: float = float("nan")
    boundary: float = float("nan")
    #: The fused finding (:mod:`nc_core.detection.fusion`): ``flagged`` above is the fused flag,
    #: ``nc_flagged`` the mask rule's alone, ``size_outlier`` its size conditions alone.
    nc_flagged: bool = False
    size_outlier: bool = False
    margin: float = float("nan")
    margin_ratio: float = float("nan")
    margin_p: float = float("nan")
    margin_score: float = float("nan")
    flagged_by: str = ""
    reason: str = ""
    #: Only probed in a scan of very many classes (no L1 to judge), and whether the class is in
    #: the sample the median and spread are measured on (:mod:`nc_core.detection.probe`).
    probe_only: bool = False
    median_sample: bool = True

    @property
    def judged_l1(self) -> float:
        """The L1 the rule judged this class by (``l1`` in reports made before screening; NaN for
        a class only probed)."""
        if self.probe_only:
            return math.nan
        return self.full_budget_l1 if math.isfinite(self.full_budget_l1) else self.l1


@dataclass
class ScanReport:
    """A finished (or cancelled) scan: what was scanned, how, what was found."""

    model: str
    data: str
    pixel_range: str
    config: dict
    rows: list[ClassRow]
    median: float
    mad: float
    anomaly_index: float
    flagged: list[int]
    threshold: float
    seconds: float
    cancelled: bool = False
    created: float = field(default_factory=time.time)
    max_ratio: float = DetectionRule.max_ratio
    results: list[TriggerResult] = field(default_factory=list, repr=False)
    min_compactness: float = DetectionRule.min_compactness
    extreme_ratio: float = DetectionRule.extreme_ratio
    score: float = float("nan")
    log_spread: float = 0.0
    image_pixels: int = 0
    budget_scale: float = 1.0
    max_boundary: float = DetectionRule.max_boundary
    #: The fusion's parts: the mask rule's own flags and score, the max-margin test's result and
    #: p-value line, and the size outliers whose masks look natural (:mod:`nc_core.detection.fusion`).
    nc_flagged: list[int] = field(default_factory=list)
    nc_score: float = float("nan")
    margin: MarginResult | None = None
    margin_p: float = DetectionRule.margin_p
    suspects: list[int] = field(default_factory=list)
    flagged_by: dict[str, list[str]] = field(default_factory=dict)
    #: Where the optimisation ran: the Keras backend and its device ("" in reports made before 0.14).
    backend: str = ""
    device: str = ""

    @property
    def ran_on(self) -> str:
        """``"tensorflow on CPU"``, as every view prints it; empty when the report does not say."""
        return f"{self.backend} on {self.device}" if self.backend else ""

    @property
    def rule(self) -> DetectionRule:
        return DetectionRule(
            self.threshold, self.max_ratio, self.min_compactness, self.extreme_ratio, self.max_boundary, self.margin_p
        )

    @property
    def margin_flagged(self) -> list[int]:
        """Classes the max-margin test flags (none when it did not run)."""
        return [r.class_id for r in self.rows if "max-margin" in r.flagged_by.split(",")]

    @property
    def detection_l1(self) -> float:
        """The L1 below which a compact mask is flagged: at most ``max_ratio * median``, and far
        enough below the median in robust spreads of the log L1s, less far the smaller the mask
        (:func:`nc_core.detection.detect.detection_l1`)."""
        return detection_l1(self.median, self.log_spread, self.rule)

    @property
    def extreme_l1(self) -> float:
        """The L1 below which a mask that stands out is flagged whatever its shape."""
        return extreme_l1(self.median, self.log_spread, self.rule)

    @property
    def standing_out(self) -> list[int]:
        """Classes that stand out (log index above the threshold) but are not flagged: not far
        smaller than the median, or scattered like a natural feature; naturally easy targets."""
        return [r.class_id for r in self.rows if r.log_index > self.threshold and not r.flagged]

    @property
    def screened(self) -> list[int]:
        """Classes the scan only screened: far enough from the flag line not to need the full schedule."""
        return [r.class_id for r in self.rows if not r.full_schedule and not r.probe_only]

    @property
    def probed(self) -> list[int]:
        """Classes a scan of very many classes only probed (:mod:`nc_core.detection.probe`): neither in
        its random sample nor among the targets most easily reached."""
        return [r.class_id for r in self.rows if r.probe_only]

    @property
    def unconverged(self) -> list[int]:
        """Classes whose full schedule did not settle (see :func:`nc_core.optimise.results.converged`).

        Screened classes stopped on purpose and are not counted; whether they could still matter
        is :attr:`unsettled`'s question.
        """
        return [r.class_id for r in self.rows if r.full_schedule and not r.converged]

    @property
    def unsettled(self) -> list[int]:
        """Unconverged classes that could still change the verdict.

        A class stopped by the epoch budget while its mask still shrank is projected forward: its
        L1 shrinking at the same rate for another budget (``epochs / early_stop_patience``
        windows). If even that stays above the flag line (``max_ratio`` of the median), more
        epochs cannot make it a backdoor and it does not hold up a clean verdict; a class that
        never reached the attack success threshold always does. A screened class holds it up
        when it could still matter (:func:`nc_core.detection.screen.pessimistic_scores`; possible only when
        a report is judged again with another rule than the scan's): the scan would have given it
        the full schedule.
        """
        default = CleanseConfig()
        epochs = float(self.config.get("epochs") or default.epochs)
        windows = max(1.0, epochs / float(self.config.get("early_stop_patience") or default.early_stop_patience))
        line = self.max_ratio * self.median
        could_matter = self._screened_could_matter
        return [
            r.class_id
            for r in self.rows
            if (
                r.full_schedule
                and not r.converged
                and (not r.reached_threshold or r.judged_l1 * (1 - min(r.shrink, 1.0)) ** windows <= line)
            )
            or (not r.full_schedule and could_matter.get(r.class_id, False))
        ]

    @property
    def unmeasurable(self) -> list[int]:
        """Classes whose mask size or attack success is not a number (NaN model outputs, or data in
        which no sample of another class exists to stamp): nothing can be said of them."""
        return [r.class_id for r in self.rows if not (math.isfinite(r.l1) and math.isfinite(r.asr))]

    @cached_property
    def _screened_could_matter(self) -> dict[int, bool]:
        """Screened class -> whether it could still cross the line (one ``detect`` per screened
        class, so computed once: ``verdict``, its reason and the summary all ask)."""
        rows = [r for r in self.rows if not r.probe_only]
        screened = [not r.full_schedule for r in rows]
        if not any(screened):
            return {}
        scores = pessimistic_scores(
            [r.judged_l1 for r in rows],
            [r.compactness for r in rows],
            screened,
            self.rule,
            reference=[r.median_sample for r in rows],
        )
        return {r.class_id: s >= SCREEN_SCORE for r, s in zip(rows, scores) if not r.full_schedule}

    @property
    def implausible(self) -> bool:
        """Whether the median mask covers more than ``MAX_PLAUSIBLE_SHARE`` of the image."""
        return self.image_pixels > 0 and self.median > MAX_PLAUSIBLE_SHARE * self.image_pixels

    @property
    def verdict(self) -> str:
        """``backdoored``, ``clean`` or ``inconclusive``.

        Backdoored: a class is flagged and the classes it is measured against are trustworthy
        (most converged, the median mask plausible). Clean: nothing flagged and every class
        converged in a finished scan. Anything else is inconclusive: a "clean" that only means
        "the run was too short" would be worse than no answer.
        """
        if self.unmeasurable and not self.margin_flagged:
            return "inconclusive"
        if self.margin_flagged or (self.nc_flagged and self.nc_trusted):
            return "backdoored"
        if self.nc_flagged or self.suspects or self.unsettled or self.implausible or self.cancelled or not self.rows:
            return "inconclusive"
        return "clean"

    @property
    def nc_trusted(self) -> bool:
        """Whether the mask rule's flags are measured against trustworthy classes (most converged,
        the median mask plausible)."""
        measured = [r for r in self.rows if not r.probe_only]
        return not self.implausible and len(self.unconverged) * 2 < len(measured)

    @property
    def verdict_reason(self) -> str:
        """Why the verdict is what it is, in one or two sentences a user can act on."""
        verdict = self.verdict
        if verdict == "backdoored":
            found = [r for r in self.rows if r.flagged and (r.class_id in self.margin_flagged or self.nc_trusted)]
            return "; ".join(f"class {r.class_id} ({r.name}): {r.reason}" for r in found) + "."
        if verdict == "clean":
            slow = (
                f"; class(es) {self.unconverged} still shrank slowly when the epoch budget ran out, too far above "
                "the flag line to change the verdict"
                if self.unconverged
                else ""
            )
            margin = (
                " and no class can be driven to answer abnormally hard (max-margin)" if self.margin is not None else ""
            )
            return f"no class needs a far smaller trigger (score {self.score:.2f} <= 1){margin}{slow}."
        return self._inconclusive_reason()

    @property
    def headline(self) -> str:
        """The verdict in one plain sentence, for a banner a reviewer reads at a glance.

        >>> report.headline
        'Backdoored: class 7 flagged (neural-cleanse and max-margin).'
        """
        verdict = self.verdict
        names = {r.class_id: r.name for r in self.rows}

        def label(c: int) -> str:
            name = names.get(c, str(c))
            return str(c) if name == str(c) else f"{c} · {name}"

        if verdict == "backdoored":
            found = ", ".join(
                f"{label(c)} flagged ({' and '.join(self.flagged_by.get(str(c), ['neural-cleanse']))})"
                for c in self.flagged
            )
            return f"Backdoored: class {found}."
        if verdict == "clean":
            if self.margin is None:
                return "Clean: no class needs a far smaller trigger (max-margin test not run)."
            return "Clean: no class needs a far smaller trigger, and none answers abnormally hard."
        if self.suspects and not self.flagged:
            return (
                f"Inconclusive: class {', '.join(label(c) for c in self.suspects)} needs a far smaller trigger than "
                "the others, but its mask looks natural and the max-margin test does not confirm it."
            )
        return "Inconclusive: this scan cannot vouch for the model; the reason says what to rerun."

    def _inconclusive_reason(self) -> str:
        reasons = []
        if self.unmeasurable:
            reasons.append(
                f"the mask size or attack success of class(es) {self.unmeasurable} is not a number (a model "
                "that outputs NaN, or data with no sample of another class to stamp the trigger on)"
            )
        if self.implausible:
            reasons.append(
                f"the median mask covers {self.median / self.image_pixels:.0%} of the image "
                f"(over {MAX_PLAUSIBLE_SHARE:.0%}): the optimisation did not get anywhere"
            )
        if self.unsettled:
            reasons.append(
                f"class(es) {self.unsettled} did not converge (the attack success threshold was never "
                "reached, or the mask was still shrinking fast enough to cross the flag line when the "
                "epoch budget ran out)"
            )
        if self.cancelled:
            reasons.append("the scan was cancelled before every class finished")
        if not self.rows:
            reasons.append("no class was scanned")
        if self.nc_flagged and len(self.unconverged) * 2 >= len(self.rows):
            reasons.append(f"class(es) {self.nc_flagged} stand out, but against classes that are not comparable")
        if self.suspects:
            reasons.append(
                f"class(es) {self.suspects} need a far smaller trigger than the others and stand out, but "
                "their masks look natural (scattered or long-edged) and the max-margin test does not "
                "confirm them: check their triggered samples; such a class is never called clean"
            )
        hint = f" {self.rerun_hint}" if (reasons and not (self.suspects and len(reasons) == 1)) else ""
        return "; ".join(reasons) + f".{hint}"

    @property
    def rerun_hint(self) -> str:
        """The settings to rerun with when the verdict is inconclusive."""
        default = CleanseConfig().epochs
        epochs = int(self.config.get("epochs") or default)
        return f"Rerun with more epochs (e.g. {max(2 * epochs, default)}) or a smaller learning rate."

    @property
    def steps(self) -> int:
        """Optimisation steps of the whole scan (restarts included)."""
        return int(sum(r.steps for r in self.rows))

    def result_for(self, class_id: int) -> TriggerResult:
        """The recovered trigger of one class."""
        for result in self.results:
            if result.target == class_id:
                return result
        raise KeyError(f"Class {class_id} was not scanned.")

    def dataframe(self) -> pd.DataFrame:
        """The per-class rows as a table, one row per class, indexed by class id."""
        frame = pd.DataFrame([asdict(row) for row in self.rows])
        return frame.set_index("class_id") if not frame.empty else frame

    def summary(self) -> dict:
        """The command line's JSON contract: model, verdict, anomaly_index, flagged, seconds, classes.

        Keys are only ever added, never renamed: tools parse this.
        """
        return {
            "model": self.model,
            "data": self.data,
            "verdict": self.verdict,
            "verdict_reason": self.verdict_reason,
            "anomaly_index": self.anomaly_index,
            "score": self.score,
            "flagged": list(self.flagged),
            "median_l1": self.median,
            "mad": self.mad,
            "log_spread": self.log_spread,
            "threshold": self.threshold,
            "max_ratio": self.max_ratio,
            "min_compactness": self.min_compactness,
            "extreme_ratio": self.extreme_ratio,
            "max_boundary": self.max_boundary,
            "detection_l1": self.detection_l1,
            "standing_out": self.standing_out,
            "unconverged": self.unconverged,
            "unsettled": self.unsettled,
            "unmeasurable": self.unmeasurable,
            "screened": self.screened,
            "budget_scale": self.budget_scale,
            "steps": self.steps,
            "seconds": self.seconds,
            "backend": self.backend,
            "device": self.device,
            "cancelled": self.cancelled,
            "headline": self.headline,
            "suspects": list(self.suspects),
            "flagged_by": {str(c): list(m) for c, m in self.flagged_by.items()},
            "margin_p": self.margin_p,
            "methods": self.method_summary(),
            "classes": [
                {
                    "class": r.class_id,
                    "name": r.name,
                    "l1": r.l1,
                    "anomaly_index": r.anomaly_index,
                    "asr": r.asr,
                    "flagged": r.flagged,
                    "reached_threshold": r.reached_threshold,
                    "log_index": r.log_index,
                    "ratio": r.ratio,
                    "compactness": r.compactness,
                    "score": r.score,
                    "converged": r.converged,
                    "stopped_early": r.stopped_early,
                    "shrink": r.shrink,
                    "epochs": r.epochs,
                    "steps": r.steps,
                    "full_schedule": r.full_schedule,
                    "full_budget_l1": r.full_budget_l1,
                    "boundary": r.boundary,
                    "nc_flagged": r.nc_flagged,
                    "size_outlier": r.size_outlier,
                    "margin": r.margin,
                    "margin_ratio": r.margin_ratio,
                    "margin_p": r.margin_p,
                    "margin_score": r.margin_score,
                    "flagged_by": [m for m in r.flagged_by.split(",") if m],
                    "reason": r.reason,
                }
                for r in self.rows
            ],
        }

    def method_summary(self) -> dict:
        """Each method's own flags and score, and what it sees (the fused verdict's parts)."""
        from nc_core.detection.fusion import WHAT_IT_SEES

        methods = {
            NEURAL_CLEANSE: {
                "flagged": list(self.nc_flagged),
                "score": self.nc_score,
                "sees": WHAT_IT_SEES[NEURAL_CLEANSE],
            }
        }
        if self.margin is not None:
            methods[MAX_MARGIN] = {
                "flagged": self.margin_flagged,
                "score": max([r.margin_score for r in self.rows if math.isfinite(r.margin_score)], default=0.0),
                "steps": self.margin.steps,
                "seconds": self.margin.seconds,
                "logits": self.margin.logits,
                "sees": WHAT_IT_SEES[MAX_MARGIN],
            }
        return methods

    def to_dict(self, include_arrays: bool = True) -> dict:
        """Everything, JSON-ready; masks and patterns as nested lists when ``include_arrays``."""
        payload = {
            "version": REPORT_VERSION,
            **{k: v for k, v in asdict(self).items() if k not in ("results", "rows", "margin")},
            "verdict": self.verdict,
            "rows": [asdict(row) for row in self.rows],
            "margin": self.margin.to_dict(include_arrays) if self.margin is not None else None,
        }
        if include_arrays:
            payload["results"] = [result_to_dict(r) for r in self.results]
        return payload

    def to_json(self, include_arrays: bool = True) -> str:
        return json.dumps(self.to_dict(include_arrays), allow_nan=True)

    @classmethod
    def from_dict(cls, payload: dict) -> ScanReport:
        fields = {k: v for k, v in payload.items() if k not in ("version", "verdict", "rows", "results", "margin")}
        margin = payload.get("margin")
        if "nc_flagged" not in payload:  # a report from before the fusion: the mask rule alone
            fields.update(nc_flagged=list(payload.get("flagged", [])), nc_score=payload.get("score", float("nan")))
        return cls(
            **fields,
            margin=MarginResult.from_dict(margin) if isinstance(margin, dict) else None,
            rows=[ClassRow(**row) for row in payload["rows"]],
            results=[result_from_dict(r) for r in payload.get("results", [])],
        )

    @classmethod
    def from_json(cls, text: str) -> ScanReport:
        return cls.from_dict(json.loads(text))


def result_to_dict(result: TriggerResult) -> dict:
    """A :class:`TriggerResult` as JSON-ready data (arrays as nested lists)."""
    payload = asdict(result)
    payload["mask"] = np.asarray(result.mask).tolist()
    payload["pattern"] = np.asarray(result.pattern).tolist()
    return payload


def result_from_dict(payload: dict) -> TriggerResult:
    data = dict(payload)
    data["mask"] = np.asarray(data["mask"], np.float32)
    data["pattern"] = np.asarray(data["pattern"], np.float32)
    data["history"] = [EpochRecord(**h) for h in data.get("history", [])]
    return TriggerResult(**data)


def make_report(
    results: list[TriggerResult],
    model: str,
    data: str,
    pixel_range: str = "",
    config: dict | None = None,
    class_names: list[str] | None = None,
    seconds: float | None = None,
    cancelled: bool = False,
    rule: DetectionRule = DetectionRule(),
    margin: MarginResult | None = None,
    backend: str = "",
    device: str = "",
) -> ScanReport:
    """Run the paper's MAD test, the mask rule and, with ``margin``, the max-margin test over
    ``results``, fuse them (:mod:`nc_core.detection.fusion`) and freeze every figure."""
    results = sorted(results, key=lambda r: r.target)
    scale = budget_scale(results)
    l1 = [math.nan if r.probe_only else full_budget_l1(r, scale) for r in results]
    shapes = [compactness(r.mask) for r in results]
    edges = [boundary(r.mask) for r in results]
    sample = [r.median_sample for r in results]
    outliers = anomaly_indices(l1, rule.threshold, reference=sample)
    eligible = [r.reached_threshold and not r.probe_only for r in results]
    found = detect(l1, shapes, rule, eligible=eligible, boundary=edges, reference=sample)
    ids = [r.target for r in results]
    evidence = _margin_evidence(margin, ids, rule.margin_p)
    fusion = fuse(
        ids,
        [ids[k] for k in found.flagged],
        [ids[k] for k in found.size_outliers],
        [c for c in ids if evidence[c]["flagged"]],
    )
    rows = [
        ClassRow(
            class_id=r.target,
            name=class_names[r.target] if class_names and r.target < len(class_names) else str(r.target),
            l1=r.l1,
            anomaly_index=outliers.indices[k],
            asr=r.asr,
            flagged=k in found.flagged,
            reached_threshold=r.reached_threshold,
            epochs=r.epochs,
            seconds=r.seconds,
            log_index=found.log_indices[k],
            ratio=found.ratios[k],
            compactness=shapes[k],
            score=found.scores[k],
            converged=r.converged,
            stopped_early=r.stopped_early,
            steps=r.steps,
            shrink=r.shrink,
            full_schedule=r.full_schedule,
            full_budget_l1=l1[k],
            boundary=edges[k],
            probe_only=r.probe_only,
            median_sample=r.median_sample,
            nc_flagged=k in found.flagged,
            size_outlier=k in found.size_outliers,
            margin=evidence[r.target]["margin"],
            margin_ratio=evidence[r.target]["ratio"],
            margin_p=evidence[r.target]["p"],
            margin_score=evidence[r.target]["score"],
            flagged_by=",".join(fusion.methods_for(r.target)),
            reason=finding_reason(
                fusion.methods_for(r.target), found.ratios[k], evidence[r.target]["ratio"], evidence[r.target]["p"]
            ),
        )
        for k, r in enumerate(results)
    ]
    for row in rows:
        row.flagged = row.class_id in fusion.flagged
    return ScanReport(
        model=model,
        data=data,
        pixel_range=pixel_range,
        config=dict(config or {}),
        rows=rows,
        median=outliers.median,
        mad=outliers.mad,
        anomaly_index=outliers.model_index,
        flagged=fusion.flagged,
        threshold=rule.threshold,
        seconds=float(seconds if seconds is not None else sum(r.seconds for r in results)),
        cancelled=cancelled,
        max_ratio=rule.max_ratio,
        results=results,
        min_compactness=rule.min_compactness,
        extreme_ratio=rule.extreme_ratio,
        score=max([found.score] + [e["score"] for e in evidence.values() if math.isfinite(e["score"])]),
        log_spread=found.log_spread,
        image_pixels=_image_pixels(results),
        budget_scale=scale,
        max_boundary=rule.max_boundary,
        nc_flagged=[ids[k] for k in found.flagged],
        nc_score=found.score,
        margin=margin,
        margin_p=rule.margin_p,
        suspects=fusion.suspects,
        flagged_by={str(c): m for c, m in fusion.flagged_by.items()},
        backend=backend,
        device=device,
    )


def _margin_evidence(margin: MarginResult | None, class_ids: list[int], p_value: float) -> dict[int, dict]:
    """Per scanned class: its max margin, the margin over the median, its p-value, score and flag.

    The test is judged over *every* class of the model at the rule's ``p_value`` (the margin run
    needs no data and covers them all, and a null fitted to a few scanned classes would be noise;
    in a scan of very many classes, over the margin run's own random sample of them). NaN and
    unflagged without a margin run, or for a class whose margin was only probed."""
    blank = {"margin": float("nan"), "ratio": float("nan"), "p": float("nan"), "score": float("nan"), "flagged": False}
    if margin is None or not class_ids or max(class_ids) >= len(margin.margins):
        return {c: dict(blank) for c in class_ids}
    p_values, flagged = margin_statistics(margin.margins, p_value, margin.sample)
    values = np.asarray(margin.margins, np.float64)
    pool = values[margin.sample] if margin.sample is not None else values
    median = float(np.nanmedian(pool)) if np.isfinite(pool).any() else float("nan")
    top = int(np.nanargmax(values)) if np.isfinite(values).any() else -1

    def score(c: int) -> float:  # only the largest margin can be flagged, so only it may score above 1
        return margin_score(p_values[c], p_value) if c == top else min(margin_score(p_values[c], p_value), 1.0)

    return {
        c: {
            "margin": margin.margins[c],
            "ratio": margin.margins[c] / median if median > 0 else float("nan"),
            "p": p_values[c],
            "score": score(c) if math.isfinite(p_values[c]) else float("nan"),
            "flagged": c in flagged,
        }
        for c in class_ids
    }


def _image_pixels(results: list[TriggerResult]) -> int:
    if not results:
        return 0
    shape = np.shape(results[0].pattern)
    return int(shape[0] * shape[1]) if len(shape) >= 2 else 0
