"""How an audit did against known labels: the figures the field reports for detectors.

A backdoored model counts as right only when exactly its target classes are flagged; a clean one
when nothing is; ROC-AUC ranks the models by the product's score (TrojAI-style evaluation).

    >>> audit_metrics([AuditOutcome("backdoored", (3,), "backdoored", (3,), 2.1)])["accuracy"]
    1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AuditOutcome:
    """A model's known label and targets beside what the scan said (verdict, flagged, score)."""

    label: str | None
    targets: tuple[int, ...]
    verdict: str | None
    flagged: tuple[int, ...]
    score: float

    @property
    def right(self) -> bool:
        if self.label == "backdoored":
            return self.verdict == "backdoored" and (not self.targets or set(self.flagged) == set(self.targets))
        return self.verdict != "backdoored"


def audit_metrics(outcomes: list[AuditOutcome]) -> dict:
    """Accuracy, detections, false positives, ROC-AUC and the confusion table of the labelled outcomes."""
    labelled = [o for o in outcomes if o.label in ("clean", "backdoored") and o.verdict is not None]
    backdoored = [o for o in labelled if o.label == "backdoored"]
    clean = [o for o in labelled if o.label == "clean"]
    confusion = {
        label: {
            verdict: sum(o.label == label and o.verdict == verdict for o in labelled)
            for verdict in ("backdoored", "clean", "inconclusive")
        }
        for label in ("backdoored", "clean")
    }
    return {
        "models": len(labelled),
        "accuracy": sum(o.right for o in labelled) / len(labelled) if labelled else float("nan"),
        "backdoored_exact": sum(o.right for o in backdoored),
        "backdoored": len(backdoored),
        "false_positives": sum(o.verdict == "backdoored" for o in clean),
        "clean": len(clean),
        "roc_auc": roc_auc([o.score for o in backdoored], [o.score for o in clean]),
        "confusion": confusion,
    }


def roc_auc(positive: list[float], negative: list[float]) -> float:
    """Probability that a backdoored model scores above a clean one (ties count half); NaN
    without both kinds. The Mann-Whitney form of the area under the ROC curve.

    >>> roc_auc([2.0, 1.5], [0.3, 1.5])
    0.875
    """
    pos = np.asarray([p for p in positive if np.isfinite(p)], float)
    neg = np.asarray([n for n in negative if np.isfinite(n)], float)
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def roc_points(positive: list[float], negative: list[float]) -> tuple[list[float], list[float]]:
    """The ROC curve's (false positive rate, true positive rate) points, one per distinct score.

    >>> roc_points([2.0], [1.0])
    ([0.0, 0.0, 1.0], [0.0, 1.0, 1.0])
    """
    pos = [p for p in positive if np.isfinite(p)]
    neg = [n for n in negative if np.isfinite(n)]
    if not pos or not neg:
        return [], []
    fpr, tpr = [0.0], [0.0]
    for threshold in sorted(set(pos) | set(neg), reverse=True):
        fpr.append(sum(n >= threshold for n in neg) / len(neg))
        tpr.append(sum(p >= threshold for p in pos) / len(pos))
    return fpr, tpr
