"""Benchmark: models audited per minute with 1 and with 2 local Ray workers, in one run.

The same manifest (the shipped MNIST twins, each listed ``--copies`` times, product defaults) is
audited twice into fresh stores, with one worker and with two; it prints wall time, models per
minute and the ratio, plus the per-model scan time that the README's estimate for 1,000 models
starts from.

    python benchmarks/bench_audit.py                 # 8 models, 1 then 2 workers (~5 min)
    python benchmarks/bench_audit.py --copies 1 --workers 1,2
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nc_core.audit.manifest import AuditEntry  # noqa: E402
from nc_core.audit.runner import AuditSettings, run_audit  # noqa: E402
from nc_core.runs.store import RunStore  # noqa: E402

SAMPLES = ROOT / "sample_models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="times each MNIST twin is listed")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    data = SAMPLES / "mnist_data.npz"
    entries = [
        AuditEntry(SAMPLES / f"mnist_{kind}.keras", data, kind, (7,) if kind == "backdoored" else ())
        for _ in range(args.copies)
        for kind in ("backdoored", "clean")
    ]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {len(entries)} models")
    print("| workers | wall time | models per minute | mean scan time per model | accuracy |")
    print("|---|---|---|---|---|")
    rates = {}
    for workers in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            result = run_audit(entries, AuditSettings(), RunStore(Path(folder) / "nc_data"), workers=workers)
        rates[workers] = len(entries) / result.seconds * 60
        scan = sum(r.seconds for r in result.rows) / len(result.rows)
        print(
            f"| {workers} | {result.seconds:.1f} s | {rates[workers]:.1f} | {scan:.1f} s | "
            f"{result.metrics['accuracy']:.0%} |",
            flush=True,
        )
    if len(rates) > 1:
        low, high = min(rates), max(rates)
        print(f"\n{high} workers over {low}: {rates[high] / rates[low]:.2f}x the models per minute")


if __name__ == "__main__":
    main()
