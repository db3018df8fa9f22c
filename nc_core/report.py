"""The result of a scan: per-class rows, the MAD statistics and the verdict, as plain data.

Every number a user sees (L1, anomaly index, ASR, verdict) is computed once, here, when the
report is made, and stored with it; the dashboard, the CLI and exported bundles all read these
stored values instead of recomputing them.

    >>> report = make_report(results, model="signs_backdoored.keras", data="signs_data.npz")
    >>> report.verdict, report.flagged
    ('backdoored', [33])
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from nc_core.cleanse import EpochRecord, TriggerResult
from nc_core.detect import DEFAULT_MAX_RATIO, DEFAULT_THRESHOLD, anomaly_indices, detection_l1

REPORT_VERSION = 1


@dataclass
class ClassRow:
    """One class of a scan, as shown in tables and printed by the CLI."""

    class_id: int
    name: str
    l1: float
    anomaly_index: float
    asr: float
    flagged: bool
    reached_threshold: bool
    epochs: int
    seconds: float


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
    max_ratio: float = DEFAULT_MAX_RATIO
    results: list[TriggerResult] = field(default_factory=list, repr=False)

    @property
    def detection_l1(self) -> float:
        """The L1 below which a class is flagged: ``min(median - threshold * MAD, max_ratio * median)``."""
        return detection_l1(self.median, self.mad, self.threshold, self.max_ratio)

    @property
    def standing_out(self) -> list[int]:
        """Classes whose index exceeds the threshold below the median but whose mask is not far
        smaller (above ``max_ratio`` of the median): naturally easy targets, not flagged."""
        return [r.class_id for r in self.rows
                if r.anomaly_index > self.threshold and r.l1 < self.median and not r.flagged]

    @property
    def verdict(self) -> str:
        """``"backdoored"`` when any class is flagged, else ``"clean"``."""
        return "backdoored" if self.flagged else "clean"

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
        """The command line's JSON contract: model, verdict, anomaly_index, flagged, seconds, classes."""
        return {
            "model": self.model,
            "data": self.data,
            "verdict": self.verdict,
            "anomaly_index": self.anomaly_index,
            "flagged": list(self.flagged),
            "median_l1": self.median,
            "mad": self.mad,
            "threshold": self.threshold,
            "max_ratio": self.max_ratio,
            "detection_l1": self.detection_l1,
            "standing_out": self.standing_out,
            "seconds": self.seconds,
            "cancelled": self.cancelled,
            "classes": [
                {"class": r.class_id, "name": r.name, "l1": r.l1, "anomaly_index": r.anomaly_index,
                 "asr": r.asr, "flagged": r.flagged, "reached_threshold": r.reached_threshold}
                for r in self.rows
            ],
        }

    def to_dict(self, include_arrays: bool = True) -> dict:
        """Everything, JSON-ready; masks and patterns as nested lists when ``include_arrays``."""
        payload = {
            "version": REPORT_VERSION,
            **{k: v for k, v in asdict(self).items() if k not in ("results", "rows")},
            "verdict": self.verdict,
            "rows": [asdict(row) for row in self.rows],
        }
        if include_arrays:
            payload["results"] = [result_to_dict(r) for r in self.results]
        return payload

    def to_json(self, include_arrays: bool = True) -> str:
        return json.dumps(self.to_dict(include_arrays), allow_nan=True)

    @classmethod
    def from_dict(cls, payload: dict) -> "ScanReport":
        fields = {k: v for k, v in payload.items() if k not in ("version", "verdict", "rows", "results")}
        return cls(
            **fields,
            rows=[ClassRow(**row) for row in payload["rows"]],
            results=[result_from_dict(r) for r in payload.get("results", [])],
        )

    @classmethod
    def from_json(cls, text: str) -> "ScanReport":
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
    threshold: float = DEFAULT_THRESHOLD,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> ScanReport:
    """Run the MAD test over ``results`` and freeze every figure into a report."""
    results = sorted(results, key=lambda r: r.target)
    outliers = anomaly_indices([r.l1 for r in results], threshold, max_ratio)
    rows = [
        ClassRow(
            class_id=r.target,
            name=class_names[r.target] if class_names and r.target < len(class_names) else str(r.target),
            l1=r.l1,
            anomaly_index=index,
            asr=r.asr,
            flagged=k in outliers.flagged,
            reached_threshold=r.reached_threshold,
            epochs=r.epochs,
            seconds=r.seconds,
        )
        for k, (r, index) in enumerate(zip(results, outliers.indices))
    ]
    return ScanReport(
        model=model,
        data=data,
        pixel_range=pixel_range,
        config=dict(config or {}),
        rows=rows,
        median=outliers.median,
        mad=outliers.mad,
        anomaly_index=outliers.model_index,
        flagged=[results[k].target for k in outliers.flagged],
        threshold=threshold,
        seconds=float(seconds if seconds is not None else sum(r.seconds for r in results)),
        cancelled=cancelled,
        max_ratio=max_ratio,
        results=results,
    )
