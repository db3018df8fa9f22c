"""Benchmark: step time, time per class and full-scan time on the shipped ``signs`` models.

Prints one block per configuration (the product defaults and the paper's original defaults)
and the verdict on both twins, so speed and correctness are read together. The original
defaults take tens of minutes for 43 classes on a laptop CPU, so by default they run on a few
classes and the full scan is extrapolated (``--original-classes all`` runs it for real).

    python benchmarks/bench_scan.py                       # product defaults, both twins
    python benchmarks/bench_scan.py --original-classes 0,16,33
    python benchmarks/bench_scan.py --engine legacy --classes 0-9
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nc_core.runtime import configure_tensorflow  # noqa: E402

configure_tensorflow()  # as the CLI and the dashboard's workers do

from nc_core.cleanse import CleanseConfig  # noqa: E402
from nc_core.engine import KerasEngine  # noqa: E402
from nc_core.inputs import load_inputs  # noqa: E402
from nc_core.scan import scan  # noqa: E402

SAMPLES = ROOT / "sample_models"


def parse_classes(text: str, num_classes: int) -> list[int] | None:
    if text == "all":
        return None
    chosen: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        chosen.extend(range(int(low), int(high or low) + 1))
    return [c for c in chosen if c < num_classes]


def step_time(inputs, config: CleanseConfig, steps: int = 200) -> float:
    """Seconds per optimisation step, after the trace (what the schedule multiplies)."""
    engine = KerasEngine(inputs.classifier, inputs.data.x, inputs.data.pixel_range,
                         batch_size=config.batch_size)
    engine.start_target(0)
    engine.run_epoch(0.0, 5)
    started = time.perf_counter()
    engine.run_epoch(1e-3, steps)
    return (time.perf_counter() - started) / steps


def run(label: str, model: str, config: CleanseConfig, classes: str) -> dict:
    inputs = load_inputs(SAMPLES / model, SAMPLES / "signs_data.npz")
    chosen = parse_classes(classes, inputs.info.num_classes)
    started = time.perf_counter()
    report = scan(inputs.classifier, inputs.data, chosen, config, model_name=model)
    seconds = time.perf_counter() - started
    per_class = seconds / len(report.rows)
    steps = sum(r.steps for r in report.results) / len(report.results)
    return {
        "config": label, "model": model, "classes": len(report.rows), "seconds": round(seconds, 1),
        "seconds_per_class": round(per_class, 2), "steps_per_class": round(steps),
        "full_scan_seconds": round(per_class * inputs.info.num_classes, 1),
        "extrapolated": len(report.rows) < inputs.info.num_classes,
        "verdict": report.verdict, "flagged": report.flagged, "anomaly_index": round(report.anomaly_index, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="all", help="product-default classes: all, or e.g. 0-9,33")
    parser.add_argument("--original-classes", default="0,16,33", help="classes for the original defaults")
    parser.add_argument("--engine", default="keras", choices=["keras", "legacy"])
    parser.add_argument("--json", action="store_true", help="print one JSON line per row")
    args = parser.parse_args()

    product = CleanseConfig(engine=args.engine)
    original = CleanseConfig.original(engine=args.engine)
    inputs = load_inputs(SAMPLES / "signs_backdoored.keras", SAMPLES / "signs_data.npz")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, engine {args.engine}")
    print(f"step time (batch {product.batch_size}): {step_time(inputs, product) * 1000:.1f} ms")
    rows = [run("product", m, product, args.classes) for m in ("signs_backdoored.keras", "signs_clean.keras")]
    if args.original_classes != "none":
        rows += [run("original", m, original, args.original_classes)
                 for m in ("signs_backdoored.keras", "signs_clean.keras")]
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            note = " (extrapolated)" if row["extrapolated"] else ""
            print(f"{row['config']:8s} {row['model']:24s} {row['classes']:2d} classes {row['seconds']:7.1f} s  "
                  f"{row['seconds_per_class']:6.2f} s/class  {row['steps_per_class']:5d} steps/class  "
                  f"43-class scan {row['full_scan_seconds']:7.1f} s{note}  verdict {row['verdict']} "
                  f"flagged {row['flagged']} index {row['anomaly_index']}")


if __name__ == "__main__":
    main()
