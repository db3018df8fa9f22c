"""Benchmark: scan cost against the number of classes and the model's size.

Each model is scanned with the product's defaults in a process of its own, so its peak resident
memory (``ru_maxrss``) is the scan's alone: model, data, TensorFlow and the optimisation. A row
gives the wall time, the Neural Cleanse steps (``report.steps``, restarts included), the
max-margin test's steps and seconds, how many classes were probed only, screened only and run in
full, the peak memory, and the verdict beside the truth.

The models: the shipped twins (``sample_models/``: 10-class MNIST CNN, 43-class signs CNN) and
the sizes zoo (``python -m benchmarks.sizes.build_sizes``, into ``.zoo/sizes``: 200- and
1,000-class "triples" CNNs, a 32x32 ResNet-18 and a 96x96 MobileNetV2, clean and backdoored).

    python benchmarks/bench_sizes.py                         # every model (about an hour on 2 cores)
    python benchmarks/bench_sizes.py --only triples200_backdoored,triples1000_backdoored
    python benchmarks/bench_sizes.py --only resnet18_backdoored --batch-sizes 16,32,64 --epochs 10

``--batch-sizes`` repeats each scan at each batch size (memory against time). The summary then
says how the steps grow from 200 to 1,000 classes (the exponent ``log(steps ratio) / log 5``).
Run it from the repository's root on an otherwise idle machine; ``--json FILE`` keeps the rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
SIZES = ROOT / ".zoo" / "sizes"

#: name -> (model, data, pixel range, real target or None for a clean model)
MODELS = {
    "mnist_clean": (SAMPLES / "mnist_clean.keras", SAMPLES / "mnist_data.npz", None, None),
    "mnist_backdoored": (SAMPLES / "mnist_backdoored.keras", SAMPLES / "mnist_data.npz", None, 7),
    "signs_clean": (SAMPLES / "signs_clean.keras", SAMPLES / "signs_data.npz", None, None),
    "signs_backdoored": (SAMPLES / "signs_backdoored.keras", SAMPLES / "signs_data.npz", None, 33),
    "triples200_clean": (SIZES / "models/triples200_clean.keras", SIZES / "data/triples200_0-1.npz", "0-1", None),
    "triples200_backdoored": (
        SIZES / "models/triples200_backdoored.keras",
        SIZES / "data/triples200_0-1.npz",
        "0-1",
        42,
    ),
    "triples1000_clean": (SIZES / "models/triples1000_clean.keras", SIZES / "data/triples1000_0-1.npz", "0-1", None),
    "triples1000_backdoored": (
        SIZES / "models/triples1000_backdoored.keras",
        SIZES / "data/triples1000_0-1.npz",
        "0-1",
        123,
    ),
    "resnet18_clean": (SIZES / "models/resnet18_clean.keras", SIZES / "data/signs_0-255.npz", "0-255", None),
    "resnet18_backdoored": (SIZES / "models/resnet18_backdoored.keras", SIZES / "data/signs_0-255.npz", "0-255", 3),
    "mobilenetv2_clean": (SIZES / "models/mobilenetv2_clean.keras", SIZES / "data/signs96_0-255.npz", "0-255", None),
    "mobilenetv2_backdoored": (
        SIZES / "models/mobilenetv2_backdoored.keras",
        SIZES / "data/signs96_0-255.npz",
        "0-255",
        6,
    ),
}


def scan_one(name: str, batch_size: int | None, epochs: int | None) -> dict:
    """Scan one model in this process and return its row (run by :func:`measure` in a child)."""
    sys.path.insert(0, str(ROOT))
    from nc_core.detection.scan import scan
    from nc_core.loading.inputs import load_inputs
    from nc_core.optimise.config import CleanseConfig

    model, data, pixel_range, target = MODELS[name]
    inputs = load_inputs(model, data, pixel_range)
    overrides = {"batch_size": batch_size, "epochs": epochs}
    config = CleanseConfig().replace(**{k: v for k, v in overrides.items() if v is not None})
    started = time.perf_counter()
    report = scan(inputs.classifier, inputs.data, config=config)
    rows = report.rows
    expected = "clean" if target is None else "backdoored"
    return {
        "model": name,
        "classes": len(rows),
        "params": int(inputs.classifier.count_params()),
        "input": "x".join(str(d) for d in inputs.data.x.shape[1:]),
        "images": len(inputs.data),
        "batch": config.batch_size,
        "wall_s": round(time.perf_counter() - started, 1),
        "nc_steps": report.steps,
        "margin_steps": report.margin.steps if report.margin else 0,
        "margin_s": round(report.margin.seconds, 1) if report.margin else 0.0,
        "probed": sum(r.probe_only for r in rows),
        "screened": len(report.screened),
        "full": sum(r.full_schedule for r in rows),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "verdict": report.verdict,
        "flagged": report.flagged,
        "truth": expected if target is None else f"backdoored -> {target}",
        "right": report.verdict == expected and (target is None or target in report.flagged),
        "reason": report.verdict_reason,
    }


def measure(name: str, batch_size: int | None, epochs: int | None) -> dict:
    """One model's row, scanned in a child process (its own peak memory)."""
    command = [sys.executable, __file__, "--child", name]
    command += ["--batch-sizes", str(batch_size)] if batch_size else []
    command += ["--epochs", str(epochs)] if epochs else []
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"model": name, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    columns = ["model", "classes", "params", "input", "batch", "wall_s", "nc_steps", "margin_steps", "margin_s"]
    columns += ["probed", "screened", "full", "peak_rss_mib", "verdict", "truth", "right"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def growth(rows: list[dict]) -> str:
    """How the steps grow from the 200- to the 1,000-class model (linear would be 5x, exponent 1)."""
    lines = []
    for kind in ("clean", "backdoored"):
        small = next((r for r in rows if r.get("model") == f"triples200_{kind}"), None)
        large = next((r for r in rows if r.get("model") == f"triples1000_{kind}"), None)
        if not (small and large and "nc_steps" in small and "nc_steps" in large):
            continue
        for key in ("nc_steps", "wall_s"):
            ratio = large[key] / small[key]
            lines.append(f"{kind}: {key} 1000/200 = {ratio:.2f}x, exponent {math.log(ratio) / math.log(5):.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated model names (default: all that exist)")
    parser.add_argument("--batch-sizes", help="comma-separated batch sizes (default: the product's)")
    parser.add_argument("--epochs", type=int, help="most epochs per class (default: the product's)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else [None]
    if args.child:
        print(json.dumps(scan_one(args.child, batches[0], args.epochs)))
        return
    names = args.only.split(",") if args.only else [n for n, (model, *_) in MODELS.items() if model.exists()]
    print(f"# {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}", flush=True)
    rows = []
    for name in names:
        for batch in batches:
            row = measure(name, batch, args.epochs)
            rows.append(row)
            print(json.dumps(row), f"(load {os.getloadavg()[0]:.1f})", flush=True)
    print(table(rows))
    print(growth(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
