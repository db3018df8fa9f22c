"""Benchmark: one model's scan over 1 and over 2 local Ray workers (one TensorFlow thread each).

The same scan (product defaults unless told otherwise) runs once per worker count, each on a
local Ray cluster of its own (``scan(..., ray=RayCluster(workers=N))``). It prints the scan's
wall time; the time before the first class is handed to the cluster (Ray's start, the model
shipped); the classes' own wall time (first class handed out to last class done; the max-margin
test runs beside them, as one more task on a worker) and steps per second over it; the mean cost
of a class and of the max-margin test on its worker; and the verdict, which must not change with
the workers. Then 2 workers over 1, on the whole scan and on the classes.

    python benchmarks/bench_ray_scan.py                          # MNIST twin, 1 then 2 workers (~2 min)
    python benchmarks/bench_ray_scan.py --model signs_backdoored # the 43-class twin (~10 min on 2 cores)
    python benchmarks/bench_ray_scan.py --workers 1,2,4 --epochs 30 --margin-steps 0

Run it from the repository's root on an otherwise idle machine: two workers on two cores compete
with anything else running there (the load average is printed with each row).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nc_core.detection.scan import scan  # noqa: E402
from nc_core.loading.inputs import load_inputs  # noqa: E402
from nc_core.optimise.cluster import RayCluster  # noqa: E402
from nc_core.optimise.config import CleanseConfig  # noqa: E402

SAMPLES = ROOT / "sample_models"


def run(inputs, config: CleanseConfig, workers: int) -> dict:
    """One scan on a local cluster of ``workers``; its timings, from the progress events and the report."""
    seen: dict[str, float] = {}

    def on_event(event) -> None:
        now = time.perf_counter()
        if event.kind == "class_start":
            seen.setdefault("first_start", now)
        elif event.kind == "class_done":
            seen["last_done"] = now

    started = time.perf_counter()
    report = scan(inputs.classifier, inputs.data, config=config, on_event=on_event, ray=RayCluster(workers=workers))
    wall = time.perf_counter() - started
    classes_wall = seen["last_done"] - seen["first_start"]
    runs = sum(len(result.runs_l1) for result in report.results)  # restarts count as runs
    return {
        "workers": workers,
        "wall": wall,
        "before": seen["first_start"] - started,
        "classes_wall": classes_wall,
        "steps_per_second": report.steps / classes_wall,
        "per_run": sum(result.seconds for result in report.results) / runs,
        "margin": report.margin.seconds if report.margin is not None else 0.0,
        "runs": runs,
        "steps": report.steps,
        "outcome": (report.verdict, tuple(report.flagged)),
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist_backdoored", help="a shipped sample (sample_models/<model>.keras)")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--epochs", type=int, help="most epochs per class (product default 60)")
    parser.add_argument("--margin-steps", type=int, help="max-margin steps (product default 300; 0: off)")
    args = parser.parse_args()
    inputs = load_inputs(SAMPLES / f"{args.model}.keras", SAMPLES / f"{args.model.split('_')[0]}_data.npz")
    changes = {"epochs": args.epochs, "margin_steps": args.margin_steps}
    config = CleanseConfig().replace(**{k: v for k, v in changes.items() if v is not None})
    print(
        f"# {args.model}: {inputs.info.num_classes} classes, {len(inputs.data)} samples; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; epochs {config.epochs}, "
        f"screen {config.screen_epochs}, margin steps {config.margin_steps}"
    )
    print(
        "| workers | wall time | before the first class | classes' wall time | steps/s | "
        "per class run (on its worker) | max-margin test (on its worker) | runs | verdict | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        row = run(inputs, config, workers)
        rows.append(row)
        verdict, flagged = row["outcome"]
        print(
            f"| {workers} | {row['wall']:.1f} s | {row['before']:.1f} s | {row['classes_wall']:.1f} s | "
            f"{row['steps_per_second']:.0f} | {row['per_run']:.2f} s | {row['margin']:.1f} s | {row['runs']} | "
            f"{verdict} {list(flagged)} | {row['load']:.1f} |",
            flush=True,
        )
    if len({row["outcome"] for row in rows}) > 1 or len({row["steps"] for row in rows}) > 1:
        print("\nWARNING: the verdict or the steps changed with the workers; they must not.")
    if len(rows) > 1:
        one, most = rows[0], rows[-1]
        print(
            f"\n{most['workers']} workers over {one['workers']}: {one['wall'] / most['wall']:.2f}x the whole scan, "
            f"{one['classes_wall'] / most['classes_wall']:.2f}x the classes"
        )


if __name__ == "__main__":
    main()
