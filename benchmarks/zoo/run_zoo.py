"""Scan every model of the evaluation zoo and score detection rules side by side.

Usage::

    .venv/bin/python benchmarks/zoo/run_zoo.py [--zoo DIR] [--only SUBSTRING] [--schedule product|full|original]
                                                [--rescan] [--markdown FILE]

Each model of ``DIR/manifest.csv`` (made by ``build_zoo.py``) is scanned once with the library's
API, as ``python -m nc_core scan`` scans it, and its full report (masks included) is cached in
``DIR/reports/<schedule>/<model>.json``: a rerun only scans what is missing, so rules can be
compared and re-scored without scanning again. Models whose attack did not take are left out.

The same scans are then judged by three rules, so the comparison is like for like:

* ``paper``: anomaly index > 2 on the raw L1s, below the median (Wang et al., 2019);
* ``ratio``: the paper's test plus "at most half the median L1" (this product until issue 7);
* ``product``: the current rule of :mod:`nc_core.detection.detect` (verdicts clean / backdoored /
  inconclusive), as every scan reports it.

For each data set and trigger type it prints: backdoored models flagged with exactly their
target(s), clean models flagged (false positives), inconclusive verdicts, the ROC-AUC of each
rule's continuous per-model score, and seconds per model.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from nc_core.detection.detect import anomaly_indices  # noqa: E402
from nc_core.detection.report import ScanReport, make_report  # noqa: E402
from nc_core.optimise.config import CleanseConfig  # noqa: E402

DEFAULT_ZOO = ROOT / ".zoo"


@dataclass(frozen=True)
class Judgement:
    """What one rule says of one model: the verdict, the classes flagged and a score."""

    verdict: str
    flagged: tuple[int, ...]
    score: float


def paper_rule(report: ScanReport, max_ratio: float = 1.0) -> Judgement:
    """Index > 2 below the median on raw L1s (on the full-schedule scale), scored by the smallest mask's index."""
    outliers = anomaly_indices([r.judged_l1 for r in report.rows], 2.0, max_ratio)
    flagged = tuple(report.rows[k].class_id for k in outliers.flagged)
    return Judgement("backdoored" if flagged else "clean", flagged, outliers.model_index)


def ratio_rule(report: ScanReport) -> Judgement:
    return paper_rule(report, max_ratio=0.5)


def product_rule(report: ScanReport) -> Judgement:
    """The fused verdict (both methods, :mod:`nc_core.detection.fusion`), as every scan reports it."""
    return Judgement(report.verdict, tuple(report.flagged), report.score)


def nc_rule(report: ScanReport) -> Judgement:
    """Neural Cleanse's mask rule alone (the product until issue 20)."""
    flagged = tuple(report.nc_flagged)
    return Judgement("backdoored" if flagged else "clean", flagged, report.nc_score)


def margin_rule(report: ScanReport) -> Judgement:
    """The max-margin test alone (MM-BD's p-value line)."""
    flagged = tuple(report.margin_flagged)
    score = max([r.margin_score for r in report.rows if np.isfinite(r.margin_score)], default=0.0)
    return Judgement("backdoored" if flagged else "clean", flagged, score)


RULES: dict[str, Callable[[ScanReport], Judgement]] = {
    "paper": paper_rule,
    "nc": nc_rule,
    "margin": margin_rule,
    "product": product_rule,
}


def roc_auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a backdoored model scores above a clean one (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    pos, neg = np.asarray(positives, float)[:, None], np.asarray(negatives, float)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def read_manifest(zoo: Path) -> list[dict]:
    path = zoo / "manifest.csv"
    if not path.is_file():
        raise SystemExit(f"No zoo manifest at {path}: build the zoo first (python -m benchmarks.zoo.build_zoo).")
    with path.open() as f:
        return [row for row in csv.DictReader(f) if row["label"] in ("clean", "backdoored")]


SCHEDULES = {
    "product": CleanseConfig,  # screen, then the full schedule where it matters
    "full": lambda: CleanseConfig(screen_epochs=0),  # every class in full (main before issue 8)
    "original": CleanseConfig.original,  # the paper's
}


def scan_model(zoo: Path, row: dict, schedule: str, done: ScanReport | None = None) -> ScanReport:
    """Scan one model as the CLI does; with ``done``, only what that report still lacks."""
    from nc_core.detection.scan import scan
    from nc_core.loading.inputs import load_inputs

    inputs = load_inputs(zoo / row["model"], zoo / row["data"])
    config = SCHEDULES[schedule]()
    report = scan(
        inputs.classifier,
        inputs.data,
        config=config,
        model_name=Path(row["model"]).name,
        done=done.results if done else (),
    )
    if done is not None:
        report.seconds += done.seconds
    return report


def cached_report(zoo: Path, row: dict, schedule: str, rescan: bool, judge_only: bool = False) -> ScanReport:
    """The model's report, scanned now or read from the cache and re-judged by today's rule.

    A cached report whose close calls (under today's rule) were never confirmed by restarts gets
    just those restarts, and screened classes that today's rule could flag get the full schedule,
    as a fresh scan would, so every model is judged on the same evidence (unless ``judge_only``:
    then nothing is optimised at all).
    """
    from nc_core.detection.scan import close_calls

    path = zoo / "reports" / schedule / (Path(row["model"]).stem + ".json")
    if path.is_file() and not rescan:
        stored = ScanReport.from_json(path.read_text())
        margin = stored.margin or margin_for(zoo, row)
        report = make_report(
            stored.results,
            stored.model,
            stored.data,
            stored.pixel_range,
            stored.config,
            [r.name for r in stored.rows],
            stored.seconds,
            stored.cancelled,
            margin=margin,
        )
        incomplete = close_calls(report) or set(report.screened) & set(report.unsettled)
        if schedule == "original" or judge_only or not incomplete:
            return report
        report = scan_model(zoo, row, schedule, done=report)
    else:
        report = scan_model(zoo, row, schedule)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(report.to_json())
    tmp.replace(path)
    return report


def margin_for(zoo: Path, row: dict):
    """The max-margin result of a model scanned before the scan ran it, computed once and cached
    in ``reports/margin/`` (it needs no data, and does not change the Neural Cleanse scan)."""
    import json

    from nc_core.detection.margin import MarginResult
    from nc_core.detection.scan import run_margin

    path = zoo / "reports" / "margin" / (Path(row["model"]).stem + ".json")
    if path.is_file():
        return MarginResult.from_dict(json.loads(path.read_text()))
    from nc_core.loading.inputs import load_inputs

    inputs = load_inputs(zoo / row["model"], zoo / row["data"])
    margin = run_margin(inputs.classifier, inputs.data, CleanseConfig(), None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(margin.to_dict(include_arrays=False)))
    return margin


def targets_of(row: dict) -> tuple[int, ...]:
    return tuple(sorted(int(t) for t in row["targets"].split()))


@dataclass
class Scored:
    row: dict
    report: ScanReport
    judgements: dict[str, Judgement]

    def hit(self, rule: str) -> bool:
        """A backdoored model flagged with exactly its target(s)."""
        j = self.judgements[rule]
        return j.verdict == "backdoored" and tuple(sorted(j.flagged)) == targets_of(self.row)


def group_table(scored: list[Scored], key: Callable[[dict], str], title: str) -> list[str]:
    """One markdown table: per group, per rule, right / false positives / inconclusive / AUC."""
    groups = sorted({key(s.row) for s in scored})
    header = f"| {title} | models | " + " | ".join(f"{rule}: right | {rule}: AUC" for rule in RULES) + " | s/model |"
    lines = [header, "|" + "---|" * (3 + 2 * len(RULES))]
    clean_all = [s for s in scored if s.row["label"] == "clean"]
    for group in groups + ["all"]:
        members = [s for s in scored if group == "all" or key(s.row) == group]
        cells = []
        for rule in RULES:
            cells += [right_cell(members, rule), f"{auc_for(members, clean_all, rule):.3f}"]
        seconds = np.mean([s.report.seconds for s in members])
        lines.append(f"| {group} | {len(members)} | " + " | ".join(cells) + f" | {seconds:.1f} |")
    return lines


def right_cell(members: list[Scored], rule: str) -> str:
    """``a/b`` models judged right; clean models flagged and inconclusive verdicts noted."""
    right = fp = inconclusive = 0
    for s in members:
        j = s.judgements[rule]
        if s.row["label"] == "clean":
            right += j.verdict == "clean"
            fp += j.verdict == "backdoored"
        else:
            right += s.hit(rule)
        inconclusive += j.verdict == "inconclusive"
    notes = [f"{fp} FP"] if fp else []
    notes += [f"{inconclusive} inc"] if inconclusive else []
    return f"{right}/{len(members)}" + (f" ({', '.join(notes)})" if notes else "")


def auc_for(members: list[Scored], clean_all: list[Scored], rule: str) -> float:
    """AUC of the group's backdoored models against its clean ones (all clean models when the
    group holds none, e.g. a trigger type)."""
    positives = [s.judgements[rule].score for s in members if s.row["label"] == "backdoored"]
    negatives = [s.judgements[rule].score for s in members if s.row["label"] == "clean"]
    if positives and not negatives:
        negatives = [s.judgements[rule].score for s in clean_all]
    if negatives and not positives:
        return float("nan")
    return roc_auc(positives, negatives)


def summary(scored: list[Scored]) -> list[str]:
    lines = []
    for rule in RULES:
        bd = [s for s in scored if s.row["label"] == "backdoored"]
        cl = [s for s in scored if s.row["label"] == "clean"]
        exact = sum(s.hit(rule) for s in bd)
        fp = sum(s.judgements[rule].verdict == "backdoored" for s in cl)
        inc = sum(s.judgements[rule].verdict == "inconclusive" for s in scored)
        auc = roc_auc([s.judgements[rule].score for s in bd], [s.judgements[rule].score for s in cl])
        lines.append(
            f"- **{rule}**: backdoored flagged with exactly their target(s) {exact}/{len(bd)} "
            f"({exact / max(len(bd), 1):.0%}); clean models flagged {fp}/{len(cl)} "
            f"({fp / max(len(cl), 1):.0%}); inconclusive {inc}; ROC-AUC {auc:.3f}"
        )
    return lines


def detail(scored: list[Scored]) -> list[str]:
    lines = [
        "| model | half | label | targets | " + " | ".join(RULES) + " | score | s |",
        "|" + "---|" * (6 + len(RULES)),
    ]
    for s in scored:
        cells = [f"{j.verdict[:4]} {list(j.flagged) or ''}".strip() for j in s.judgements.values()]
        lines.append(
            f"| {Path(s.row['model']).stem} | {s.row.get('half', '')} | {s.row['label']} | {s.row['targets']} | "
            + " | ".join(cells)
            + f" | {s.judgements['product'].score:.2f} | {s.report.seconds:.0f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", type=Path, default=Path(os.environ.get("NC_ZOO_DIR", DEFAULT_ZOO)))
    parser.add_argument("--only", default="", help="only models whose name contains this")
    parser.add_argument(
        "--schedule",
        choices=list(SCHEDULES),
        default="product",
        help="product (screen first, the default), full (every class in full) or original (the paper's)",
    )
    parser.add_argument("--rescan", action="store_true", help="scan again even where a report is cached")
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="score only models already scanned, re-judged by today's rule without optimising",
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--detail", action="store_true", help="print one line per model too")
    parser.add_argument("--half", choices=["dev", "held-out"], help="only the development or the held-out half")
    args = parser.parse_args(argv)
    schedule = args.schedule
    rows = [
        r
        for r in read_manifest(args.zoo)
        if args.only in Path(r["model"]).stem and (args.half is None or r.get("half") == args.half)
    ]
    if args.cached_only:
        rows = [r for r in rows if (args.zoo / "reports" / schedule / (Path(r["model"]).stem + ".json")).is_file()]
    if not args.cached_only:
        from nc_core.runtime import configure_backend

        configure_backend()
    scored: list[Scored] = []
    started = time.perf_counter()
    for k, row in enumerate(rows, start=1):
        report = cached_report(args.zoo, row, schedule, args.rescan, judge_only=args.cached_only)
        judgements = {name: rule(report) for name, rule in RULES.items()}
        scored.append(Scored(row, report, judgements))
        p = judgements["product"]
        print(
            f"[{k}/{len(rows)}] {Path(row['model']).stem:26} {row['label']:10} targets {row['targets'] or '-':5} "
            f"-> {p.verdict} {list(p.flagged)} score {p.score:.2f} ({report.seconds:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    out = [f"Zoo: {len(scored)} models ({schedule} schedule), scored in {time.perf_counter() - started:.0f} s", ""]
    halves = sorted({s.row.get("half", "") for s in scored})
    for half in halves:
        members = [s for s in scored if s.row.get("half", "") == half]
        out += [f"**{half or 'unsplit'} half** ({len(members)} models)", ""] + summary(members) + [""]
        out += group_table(members, lambda r: r["dataset"], "data set") + [""]
        out += group_table(members, lambda r: r["trigger_type"], "trigger") + [""]
    if len(halves) > 1:
        out += ["**both halves**", ""] + summary(scored) + [""]
    if args.detail:
        out += detail(scored)
    text = "\n".join(out)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
