"""GPU benchmark: full scans on an accelerator through Keras 3's JAX or PyTorch backend.

The GPU machines this project is lent hold JAX (CUDA) and PyTorch but not TensorFlow, and take a
few tens of MB of files per call. So this script runs the engine on ``KERAS_BACKEND=jax`` (or
``torch``) with only the pure-Python wheels ``prepare.sh`` gathers (Keras, namex, optree)
installed over the machine's own JAX. For each model it prints wall time (compilation included,
model loading aside), optimisation steps, the batched step's time and throughput beside the
one-class step's, peak device memory, and the verdict, as one table.

    bash benchmarks/gpu/prepare.sh                       # here: the wheels, into .gpu/wheels
    bash benchmarks/gpu/run.sh                           # there: install them, then this script
    KERAS_BACKEND=jax python benchmarks/gpu/bench_gpu.py --models mnist   # a CPU dry run

Every class of a model is optimised in one batched step (``classes_per_step`` = the number of
classes, at most ``--max-slots``): on a GPU one step of 43 x 32 images costs about what one of 32
does, so a scan is a few hundred compiled steps instead of 43 runs of them.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from nc_core import backend  # noqa: E402
from nc_core.detection.scan import scan  # noqa: E402
from nc_core.loading.inputs import load_inputs  # noqa: E402
from nc_core.optimise.batched import BatchedEngine  # noqa: E402
from nc_core.optimise.config import CleanseConfig  # noqa: E402

SAMPLES = ROOT / "sample_models"
MODELS = ("signs_backdoored", "signs_clean", "mnist_backdoored", "mnist_clean")


def peak_memory_mb() -> float:
    """The device's peak memory in use so far (NaN where the backend does not say)."""
    if backend.backend_name() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use", float("nan")) / 2**20
    if backend.backend_name() == "torch":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
    return float("nan")


def step_seconds(inputs, slots: int, steps: int = 50) -> float:
    """Seconds per compiled step with ``slots`` classes at once, after compilation."""
    engine = BatchedEngine(inputs.classifier, inputs.data.x, inputs.data.pixel_range, slots=slots)
    for slot in range(slots):
        engine.start_slot(slot, slot % int(inputs.classifier.outputs[0].shape[-1]), seed=slot)
    engine.run_epoch([1e-3] * slots, 10)
    started = time.perf_counter()
    engine.run_epoch([1e-3] * slots, steps)
    backend.to_numpy(engine.trigger(0)[0])  # wait for the device
    return (time.perf_counter() - started) / steps


def bench(model_path: Path, data_path: Path, max_slots: int, repeats: int) -> dict:
    inputs = load_inputs(model_path, data_path)
    classes = int(inputs.classifier.outputs[0].shape[-1])
    slots = min(classes, max_slots)
    config = CleanseConfig(classes_per_step=slots)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        report = scan(inputs.classifier, inputs.data, config=config, model_name=model_path.name)
        times.append(time.perf_counter() - started)
    batched, single = step_seconds(inputs, slots), step_seconds(inputs, 1)
    return {
        "model": model_path.stem,
        "classes": classes,
        "params": int(inputs.classifier.count_params()),
        "seconds_first": round(times[0], 2),
        "seconds": round(float(np.median(times[1:] or times)), 2),
        "steps": report.steps,
        "slots": slots,
        "step_ms": round(1000 * batched, 2),
        "images_per_s": round(slots * config.batch_size / batched),
        "single_step_ms": round(1000 * single, 2),
        "single_images_per_s": round(config.batch_size / single),
        "peak_mb": round(peak_memory_mb(), 1),
        "verdict": report.verdict,
        "flagged": report.flagged,
        "ran_on": report.ran_on,
    }


def models_to_run(names: str, zoo: Path | None, zoo_largest: int) -> list[tuple[Path, Path]]:
    wanted = names.split(",")
    chosen = [m for m in MODELS if any(m == w or m.startswith(w + "_") for w in wanted)]
    pairs = [(SAMPLES / f"{m}.keras", SAMPLES / f"{m.split('_')[0]}_data.npz") for m in chosen]
    if zoo is not None and zoo_largest > 0:
        with (zoo / "manifest.csv").open() as f:
            entries = [row for row in csv.DictReader(f) if row["label"] in ("clean", "backdoored")]
        largest = sorted(entries, key=lambda e: -(zoo / e["model"]).stat().st_size)[:zoo_largest]
        pairs += [(zoo / e["model"], zoo / e["data"]) for e in largest]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="signs,mnist", help="shipped families or model names")
    parser.add_argument("--zoo", type=Path, default=None, help="a built zoo (benchmarks/zoo) to add models from")
    parser.add_argument("--zoo-largest", type=int, default=2, help="how many of the zoo's largest models to add")
    parser.add_argument("--max-slots", type=int, default=64, help="most classes in one step")
    parser.add_argument("--repeats", type=int, default=2, help="scans per model: the first compiles; median of rest")
    parser.add_argument("--json", action="store_true", help="one JSON line per model")
    args = parser.parse_args()
    print(
        f"{platform.node()}: python {platform.python_version()}, keras {__import__('keras').__version__}, "
        f"{backend.backend_name()} on {backend.device_name()}",
        flush=True,
    )
    header = (
        f"{'model':22s} {'cls':>4s} {'params':>9s} {'1st s':>6s} {'wall s':>6s} {'steps':>6s} {'step ms':>8s} "
        f"{'img/s':>8s} {'1-cls ms':>8s} {'1-cls img/s':>11s} {'peak MB':>8s}  verdict"
    )
    if not args.json:
        print(header, flush=True)
    for model, data in models_to_run(args.models, args.zoo, args.zoo_largest):
        row = bench(model, data, args.max_slots, args.repeats)
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        print(
            f"{row['model']:22s} {row['classes']:4d} {row['params']:9d} {row['seconds_first']:6.2f} "
            f"{row['seconds']:6.2f} {row['steps']:6d} {row['step_ms']:8.2f} {row['images_per_s']:8d} "
            f"{row['single_step_ms']:8.2f} {row['single_images_per_s']:11d} {row['peak_mb']:8.1f}  "
            f"{row['verdict']} {row['flagged']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
