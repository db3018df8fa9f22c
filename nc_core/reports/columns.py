"""The per-class table, defined once: which columns, in which order, named and formatted how.

The command line's text summary, the HTML report and the dashboard's table all show a scan's
classes. Each used to keep its own list of columns, and they drifted apart (one showed the margin
ratio, another the schedule). Here each column is one :class:`Column`; the three views only lay
them out (fixed-width text, an HTML table, a sortable data frame), so a figure reads the same
everywhere and a new column is one line.

    >>> [column.label for column in CLASS_COLUMNS][:4]
    ['class', 'name', 'flagged by', 'mask L1']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from nc_core.detection.report import ClassRow, ScanReport


@dataclass(frozen=True)
class Column:
    """One column of the per-class table.

    ``value(row, report)`` gives the raw value (a number stays a number, for sorting);
    ``spec`` is its Python format (``".2f"``, ``".1%"``; empty for text); ``short`` and ``width``
    are the fixed-width text's header and width; ``help`` says what the figure means.
    """

    label: str
    short: str
    width: int
    value: Callable[[ClassRow, ScanReport], Any]
    spec: str = ""
    help: str = ""

    def text(self, row: ClassRow, report: ScanReport) -> str:
        """The cell as every view prints it (``nan`` shown as a dash)."""
        value = self.value(row, report)
        if isinstance(value, float) and math.isnan(value):
            return "-"
        return format(value, self.spec) if self.spec else str(value)

    @property
    def printf(self) -> str:
        """The format in the printf style a data-frame viewer takes (Streamlit's ``NumberColumn``)."""
        if self.spec.endswith("%"):
            return "percent"
        return f"%{self.spec}" if self.spec else ""


def _attribute(name: str) -> Callable[[ClassRow, ScanReport], Any]:
    return lambda row, report: getattr(row, name)


def standing(row: ClassRow, report: ScanReport) -> str:
    """How the class stands in the verdict, in words: flagged, a suspect, probed, screened or unsettled."""
    if row.flagged:
        return "backdoor"
    if row.class_id in report.suspects:
        return "suspect"
    if row.probe_only:
        return "probed"
    if not row.full_schedule:
        return "screened"
    return "" if row.converged else "not converged"


CLASS_COLUMNS: tuple[Column, ...] = (
    Column("class", "class", 5, _attribute("class_id"), "d"),
    Column("name", "name", 24, _attribute("name")),
    Column(
        "flagged by",
        "flagged by",
        27,
        lambda row, report: row.flagged_by.replace(",", " + "),
        help="which method flags the class",
    ),
    Column("mask L1", "L1", 9, _attribute("l1"), ".2f", "the recovered mask's size (its L1 norm)"),
    Column(
        "judged L1",
        "judged",
        7,
        _attribute("judged_l1"),
        ".2f",
        "the L1 the rule judged: a screened class's scaled to the full schedule",
    ),
    Column("of median", "ratio", 6, _attribute("ratio"), ".2f", "judged L1 over the median class's"),
    Column("anomaly index", "index", 7, _attribute("anomaly_index"), ".2f", "the paper's MAD anomaly index"),
    Column("log index", "log idx", 7, _attribute("log_index"), ".2f", "the anomaly index of log L1s"),
    Column("compactness", "compact", 7, _attribute("compactness"), ".2f", "mask mass in its two densest windows"),
    Column("boundary", "edge", 5, _attribute("boundary"), ".2f", "the mask's edge over a solid square's"),
    Column("score", "score", 6, _attribute("score"), ".2f", "the mask rule's score: above 1 flags"),
    Column("max margin", "margin", 7, _attribute("margin"), ".1f", "the largest logit margin any valid input reaches"),
    Column("margin / median", "m.ratio", 7, _attribute("margin_ratio"), ".2f", "max margin over the median class's"),
    Column("margin p-value", "m.p", 8, _attribute("margin_p"), ".2g", "the max-margin test's p-value"),
    Column("attack success", "ASR", 6, _attribute("asr"), ".1%", "share of other classes' images the trigger sends"),
    Column("steps", "steps", 6, _attribute("steps"), "d", "optimisation steps the class took"),
    Column("standing", "standing", 13, standing, help="flagged, a suspect, only screened, or not converged"),
)


def class_rows(report: ScanReport) -> list[ClassRow]:
    """The rows in the order every view lists them: smallest judged mask first."""
    return sorted(report.rows, key=lambda row: row.judged_l1)


def class_table(report: ScanReport, names: list[str] | None = None) -> pd.DataFrame:
    """The table as a data frame with one column per :data:`CLASS_COLUMNS` label, raw values.

    ``names`` overrides the stored class names (a user's label file).
    """
    import pandas as pd

    records = []
    for row in class_rows(report):
        record = {column.label: column.value(row, report) for column in CLASS_COLUMNS}
        if names and row.class_id < len(names):
            record["name"] = names[row.class_id]
        records.append(record)
    return pd.DataFrame(records, columns=[column.label for column in CLASS_COLUMNS])


def text_table(report: ScanReport) -> list[str]:
    """The table as fixed-width text lines, a header first (the command line's)."""

    def line(cells: list[str]) -> str:
        return " ".join(
            f"{cell[: column.width]:>{column.width}}" if column.spec else f"{cell[: column.width]:<{column.width}}"
            for column, cell in zip(CLASS_COLUMNS, cells)
        ).rstrip()

    lines = [line([column.short for column in CLASS_COLUMNS])]
    lines += [line([column.text(row, report) for column in CLASS_COLUMNS]) for row in class_rows(report)]
    return lines
