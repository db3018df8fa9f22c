"""Benchmark: full scans of the shipped twins with the product defaults and the paper's schedule.

Every scan is a real, full scan (no extrapolation), and speed and correctness are read together:
for each model and schedule it prints wall time, optimisation steps (total and per class), the
classes that got the full schedule, the verdict and the score, then the paper's schedule over
the product's in steps and in wall time.

    python benchmarks/bench_scan.py                                   # all three schedules, 4 models (~35 min)
    python benchmarks/bench_scan.py --schedules product               # product defaults only (~2 min)
    python benchmarks/bench_scan.py --models mnist --schedules product,full
    python benchmarks/bench_scan.py --schedules product --repeats 3          # median of 3 scans each
    python benchmarks/bench_scan.py --schedules product --backends tensorflow,jax,torch   # per backend

Wall times on a shared machine vary by 10-20 % from run to run: ``--repeats`` scans each model
that many times and reports the median (steps and verdicts are the same every time; the script
says so if not). ``--threads N`` sets the classes run side by side (default: the product's, one
per core up to 4).

``--backends`` runs the same scans once per Keras backend, each in its own process (a process
has one backend), and prints them as one table with the verdicts side by side.

Schedules: ``product`` (``CleanseConfig()``: screen, then the full schedule where it matters),
``full`` (the product's schedule for every class, ``screen_epochs=0``: main before issue 8) and
``original`` (``CleanseConfig.original()``, the paper's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nc_core.runtime import configure_backend  # noqa: E402

configure_backend()  # as the CLI and the dashboard's workers do

import numpy as np  # noqa: E402

from nc_core import backend  # noqa: E402
from nc_core.detection.scan import scan  # noqa: E402
from nc_core.loading.inputs import load_inputs  # noqa: E402
from nc_core.optimise.config import CleanseConfig  # noqa: E402
from nc_core.optimise.runner import make_engine  # noqa: E402
from nc_core.optimise.threads import auto_threads  # noqa: E402

SAMPLES = ROOT / "sample_models"
MODELS = ("signs_backdoored", "signs_clean", "mnist_backdoored", "mnist_clean")
SCHEDULES = {
    "product": lambda **kw: CleanseConfig(**kw),
    "full": lambda **kw: CleanseConfig(screen_epochs=0, **kw),
    "original": lambda **kw: CleanseConfig.original(**kw),
}


def step_time(inputs, config: CleanseConfig, steps: int = 200) -> float:
    """Seconds per optimisation step of this backend's one-class engine, after the trace."""
    engine = make_engine(inputs.classifier, inputs.data, config)
    engine.start_target(0)
    engine.run_epoch(0.0, 5)
    started = time.perf_counter()
    engine.run_epoch(1e-3, steps)
    return (time.perf_counter() - started) / steps


def run(schedule: str, model: str, engine: str, repeats: int = 1, threads: int = 0) -> dict:
    inputs = load_inputs(SAMPLES / f"{model}.keras", SAMPLES / f"{model.split('_')[0]}_data.npz")
    config = SCHEDULES[schedule](engine=engine, threads=threads)
    times, outcomes = [], set()
    for _ in range(repeats):
        started = time.perf_counter()
        report = scan(inputs.classifier, inputs.data, config=config, model_name=model)
        times.append(time.perf_counter() - started)
        outcomes.add((report.steps, report.verdict, tuple(report.flagged)))
    if len(outcomes) > 1:
        print(f"warning: {model} {schedule}: repeats differ: {sorted(outcomes)}", flush=True)
    return {
        "schedule": schedule,
        "model": model,
        "classes": len(report.rows),
        "seconds": round(float(np.median(times)), 1),
        "seconds_each": [round(t, 1) for t in times],
        "threads": auto_threads(config.threads) if engine == "keras" else 1,
        "steps": report.steps,
        "steps_per_class": round(report.steps / len(report.rows)),
        "full_schedule": len(report.rows) - len(report.screened),
        "verdict": report.verdict,
        "flagged": report.flagged,
        "score": round(report.score, 2),
        "anomaly_index": round(report.anomaly_index, 2),
        "step_ms": round(1000 * step_time(inputs, CleanseConfig()), 2),
        "backend": backend.backend_name(),
        "device": backend.device_name(),
        "l1": [round(r.l1, 2) for r in report.rows],
    }


def on_each_backend(args: argparse.Namespace) -> list[dict]:
    """This script's rows once per backend, each from its own process (``KERAS_BACKEND``)."""
    same = [
        *("--schedules", args.schedules, "--models", args.models, "--engine", args.engine),
        *("--repeats", str(args.repeats), "--threads", str(args.threads), "--json"),
    ]
    rows = []
    for name in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": name, "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run([sys.executable, __file__, *same], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name}: failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        rows += [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return rows


def print_row(row: dict) -> None:
    print(
        f"{row['backend']:10s} {row['model']:17s} {row['schedule']:8s} {row['seconds']:7.1f} s  "
        f"{row['steps']:7d} steps "
        f"({row['steps_per_class']:5d}/class, {row['full_schedule']:2d}/{row['classes']} classes in full)  "
        f"{row['verdict']:12s} {row['flagged']} score {row['score']:.2f} index {row['anomaly_index']:.2f}  "
        f"step {row['step_ms']:.2f} ms  {row['threads']} thread(s)"
        + (f"  each {row['seconds_each']}" if len(row["seconds_each"]) > 1 else ""),
        flush=True,
    )


def compare_backends(rows: list[dict]) -> None:
    """Per model: do the backends agree, how far apart are their L1s, and which is fastest."""
    for model in dict.fromkeys(r["model"] for r in rows):
        same = [r for r in rows if r["model"] == model]
        verdicts = {(r["verdict"], tuple(r["flagged"])) for r in same}
        l1 = np.array([r["l1"] for r in same])
        spread = float(np.max(np.abs(l1 / l1[0] - 1))) if len(same) > 1 else 0.0
        fastest = min(same, key=lambda r: r["seconds"])
        print(
            f"{model}: verdicts {'agree' if len(verdicts) == 1 else 'DIFFER'} ({sorted(verdicts)}), "
            f"largest per-class L1 difference from {same[0]['backend']} {100 * spread:.1f} %, "
            f"fastest {fastest['backend']} ({fastest['seconds']:.1f} s)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", default="product,full,original", help="comma-separated: " + ", ".join(SCHEDULES))
    parser.add_argument("--models", default="signs,mnist", help="model families (signs, mnist) or model names")
    parser.add_argument("--engine", default="keras", choices=["keras", "legacy"])
    parser.add_argument("--repeats", type=int, default=1, help="scans per model and schedule; the median is shown")
    parser.add_argument("--threads", type=int, default=0, help="classes side by side (0: the product's default)")
    parser.add_argument("--json", action="store_true", help="print one JSON line per row")
    parser.add_argument("--backends", default="", help="comma-separated Keras backends, each in its own process")
    args = parser.parse_args()
    if args.backends:
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores", flush=True)
        rows = on_each_backend(args)
        for row in rows:
            print_row(row)
        compare_backends(rows)
        return

    schedules = [s for s in args.schedules.split(",") if s in SCHEDULES]
    wanted = args.models.split(",")
    models = [m for m in MODELS if any(m == w or m.startswith(w + "_") for w in wanted)]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, engine {args.engine}, "
        f"{backend.backend_name()} on {backend.device_name()}",
        flush=True,
    )
    rows = []
    for model in models:
        for schedule in schedules:
            row = run(schedule, model, args.engine, args.repeats, args.threads)
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print_row(row)
    by_key = {(r["model"], r["schedule"]): r for r in rows}
    for model in models:
        product, original = by_key.get((model, "product")), by_key.get((model, "original"))
        if product and original:
            print(
                f"{model}: the paper's schedule takes {original['steps'] / product['steps']:.1f}x the steps and "
                f"{original['seconds'] / product['seconds']:.1f}x the wall time of the product's; verdicts "
                f"{original['verdict']} / {product['verdict']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
