"""One verdict over two detectors: Neural Cleanse's mask rule and the max-margin test.

The two see different things. Neural Cleanse (:mod:`nc_core.detection.detect`) asks how small a
stamped mask-and-pattern trigger can be, and finds small patches wherever they sit; it cannot
express a faint blend, a sinusoid, a warp or a colour filter. The max-margin test
(:mod:`nc_core.detection.margin`) asks how hard the model can be made to answer for a class at
all, whatever the trigger's form, and needs no data. So a class either flags is a finding:

* **flagged**: the mask rule flags it (small, standing out, and compact or tiny), or the
  max-margin test does (its p-value below the rule's ``margin_p``);
* **a suspect**: the mask rule finds it far smaller than the rest and standing out (its first
  two conditions hold) but its mask looks natural (scattered, or with a long edge), and the
  max-margin test does not confirm it. Shape is evidence that can only *choose between*
  "backdoored" and "inconclusive": a class that stands out far never reads "clean" because its
  mask looks natural, since injected triggers that the model answers to in parts give exactly
  such masks (a roaming checkerboard: 0.24 of the median, compactness 0.63).

A model with a flagged class is backdoored; one with only suspects is inconclusive; the report
adds its own reasons for "inconclusive" (unconverged classes, a cancelled scan).

    >>> fuse([0, 1, 2], nc_flagged=[], size_outliers=[], margin_flagged=[1]).flagged
    [1]
"""

from __future__ import annotations

from dataclasses import dataclass, field

NEURAL_CLEANSE = "neural-cleanse"
MAX_MARGIN = "max-margin"
#: One sentence per method on what it sees, for the dashboard, the report and the README.
WHAT_IT_SEES = {
    NEURAL_CLEANSE: "the smallest stamped patch (mask and pattern) that sends clean images to a class; "
    "finds small patches anywhere, but cannot express blends, sinusoids, warps or filters.",
    MAX_MARGIN: "how far the model can be pushed to answer for a class by any valid input (no data needed); "
    "sees triggers of any form, as a class the model answers to abnormally hard.",
}


@dataclass(frozen=True)
class Fusion:
    """The fused findings: per class, which methods flag it, and the suspects."""

    flagged: list[int]
    flagged_by: dict[int, list[str]] = field(default_factory=dict)
    suspects: list[int] = field(default_factory=list)

    def methods_for(self, class_id: int) -> list[str]:
        return self.flagged_by.get(class_id, [])


def fuse(
    class_ids: list[int],
    nc_flagged: list[int],
    size_outliers: list[int],
    margin_flagged: list[int],
) -> Fusion:
    """Combine the two methods' flags (class ids) into one set of findings (module docstring).

    ``size_outliers`` are the classes for which the mask rule's size conditions hold (far smaller
    and standing out), whatever their shape.
    """
    flagged_by: dict[int, list[str]] = {}
    for c in class_ids:
        methods = [name for name, found in ((NEURAL_CLEANSE, nc_flagged), (MAX_MARGIN, margin_flagged)) if c in found]
        if methods:
            flagged_by[c] = methods
    suspects = [c for c in class_ids if c in size_outliers and c not in flagged_by]
    return Fusion(sorted(flagged_by), flagged_by, suspects)


def finding_reason(methods: list[str], ratio: float, margin_ratio: float, p_value: float) -> str:
    """One line on why a class is flagged, naming the method(s).

    >>> finding_reason(["max-margin"], 0.9, 4.2, 0.001)
    'max-margin: the model can be driven to answer it 4.2x harder than the median class (p = 0.001)'
    """
    parts = []
    if NEURAL_CLEANSE in methods:
        parts.append(f"neural-cleanse: its trigger needs {ratio:.2f} of the median mask, compact or tiny")
    if MAX_MARGIN in methods:
        parts.append(
            f"max-margin: the model can be driven to answer it {margin_ratio:.1f}x harder than the median "
            f"class (p = {p_value:.2g})"
        )
    return "; ".join(parts)
