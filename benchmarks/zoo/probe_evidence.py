"""Probe evidence beyond the mask's size and shape on zoo models: a research tool, not the rule.

Usage::

    .venv/bin/python benchmarks/zoo/probe_evidence.py window mnist-patch6-mid:7,3,9 [--side 10]
    .venv/bin/python benchmarks/zoo/probe_evidence.py opacity mnist-blend30 mnist-clean-resnet-4
    .venv/bin/python benchmarks/zoo/probe_evidence.py noise [MODEL ...]

Each probe asks a question Neural Cleanse's mask cannot answer for the models the product rule
still gets wrong (BENCHMARKS.md, "Detection on the evaluation zoo"):

* ``window``: can the class be reached with the trigger confined to *one* window (side ``--side``,
  placed where the class's scanned mask has most mass), and at what L1? A stamped patch can; a
  natural feature scattered over the object should not. Reads the masks of ``.zoo/reports/product``.
* ``opacity``: the smallest *uniform* opacity ``a`` of a free full-image pattern,
  ``x * (1 - a) + a * p``, that sends 90 % of other classes' images to the class: the mask
  family a blended trigger lives in.
* ``noise``: where each model sends images blended with fresh uniform noise at 0.1, 0.2 and 0.3:
  a blend backdoor trained on a noise pattern may answer to any noise.

Everything runs on the zoo's own held-out data through the model's pixel range; optimisation is
plain Adam on tanh-parametrised masks and patterns, with the Neural Cleanse loss where a mask is
free (cross-entropy plus ``lambda * L1``, ``lambda`` up 1.5x after a chunk that reaches 99 %
attack success, down 1.5x otherwise).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from run_zoo import read_manifest  # noqa: E402  (this folder: the script's own)

from nc_core.detection.shape import heaviest_window  # noqa: E402
from nc_core.optimise.masks import mask_l1  # noqa: E402

ZOO = ROOT / ".zoo"
OPACITIES = [0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.55, 0.7]


def load(stem: str):
    """The zoo model ``stem``: (classifier, unit images, labels, scale, offset, manifest row)."""
    from nc_core.loading.inputs import load_inputs

    rows = [r for r in read_manifest(ZOO) if Path(r["model"]).stem == stem]
    if not rows:
        raise SystemExit(f"no scanned zoo model {stem!r} in {ZOO / 'manifest.csv'}")
    inputs = load_inputs(ZOO / rows[0]["model"], ZOO / rows[0]["data"])
    pixels = inputs.data.pixel_range
    return (
        inputs.classifier,
        inputs.data.x,
        inputs.data.y,
        np.float32(pixels.scale),
        np.float32(pixels.offset),
        rows[0],
    )


class Probe:
    """One model's trainable trigger: mask logits (masked by ``support``), pattern logits, Adam."""

    def __init__(self, model, shape, scale, offset, uniform: bool = False):
        import tensorflow as tf

        self.tf, self.model, self.scale, self.offset, self.uniform = tf, model, scale, offset, uniform
        height, width, channels = shape
        self.mask = tf.Variable(tf.zeros((height, width)))
        self.pattern = tf.Variable(tf.zeros(shape))
        self.support = tf.Variable(tf.ones((height, width)))
        self.opacity = tf.Variable(0.1)
        self.lam = tf.Variable(1e-3)
        self.target = tf.Variable(0, dtype=tf.int64)
        self.optimizer = tf.keras.optimizers.Adam(0.1)
        self.optimizer.build([self.mask, self.pattern])
        self.step = tf.function(self._step)
        self.success = tf.function(self._success)

    def reset(self, target: int, support: np.ndarray | None = None, opacity: float = 0.1) -> None:
        tf = self.tf
        self.target.assign(target)
        self.mask.assign(tf.zeros_like(self.mask))
        self.pattern.assign(tf.zeros_like(self.pattern))
        self.support.assign(tf.ones_like(self.support) if support is None else support)
        self.opacity.assign(opacity)
        self.lam.assign(1e-3)
        for variable in self.optimizer.variables:  # moments and step count; the rate is one too
            variable.assign(tf.zeros_like(variable))
        self.optimizer.learning_rate.assign(0.1)

    def _stamped(self, x):
        tf = self.tf
        pattern = (tf.tanh(self.pattern) + 1) / 2
        if self.uniform:
            mask = tf.fill(tf.shape(self.mask), self.opacity)
        else:
            mask = (tf.tanh(self.mask) + 1) / 2 * self.support
        mixed = x * (1 - mask[..., None]) + mask[..., None] * pattern
        return self.model(mixed * self.scale + self.offset, training=False), tf.reduce_sum(mask)

    def _step(self, x):
        tf = self.tf
        with tf.GradientTape() as tape:
            out, l1 = self._stamped(x)
            labels = tf.fill([tf.shape(x)[0]], self.target)
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, out))
            if not self.uniform:
                loss += self.lam * l1
        variables = [self.pattern] if self.uniform else [self.mask, self.pattern]
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    def _success(self, x):
        out, l1 = self._stamped(x)
        hits = self.tf.cast(self.tf.argmax(out, -1) == self.target, self.tf.float32)
        return self.tf.reduce_mean(hits), l1


def _batches(rng, source, size=64):
    while True:
        yield source[rng.integers(0, len(source), size)]


def probe_window(stem: str, classes: list[int], side: int, chunks: int = 60) -> None:
    model, x, y, scale, offset, row = load(stem)
    report = json.loads((ZOO / "reports" / "product" / f"{stem}.json").read_text())
    probe = Probe(model, x.shape[1:], scale, offset)
    rng = np.random.default_rng(0)
    for target in classes:
        mask = np.asarray(next(r for r in report["results"] if r["target"] == target)["mask"])
        free_l1 = mask_l1(mask)
        share, top, left = heaviest_window(mask, side)
        support = np.zeros(mask.shape[:2], np.float32)
        support[top : top + side, left : left + side] = 1
        source = x[y != target]
        held = source[rng.choice(len(source), min(512, len(source)), replace=False)]
        probe.reset(target, support)
        batches, best, reached = _batches(rng, source), math.inf, 0.0
        for _ in range(chunks):
            for _ in range(10):
                probe.step(next(batches))
            success, l1 = (float(v) for v in probe.success(held))
            reached = max(reached, success)
            if success >= 0.99:
                best = min(best, l1)
            probe.lam.assign(probe.lam * (1.5 if success >= 0.99 else 1 / 1.5))
        median = report["median"]
        print(
            f"{stem:24s} class {target} (targets {row['targets'] or '-'}): free mask L1 {free_l1:6.1f} "
            f"({free_l1 / median:.2f} of the median), {share:.2f} of it in the {side}x{side} window at "
            f"({top},{left}); confined: best attack success {reached:.2f}, L1 at 99 % {best:6.1f} "
            f"({best / free_l1:.2f}x the free mask)",
            flush=True,
        )


def probe_opacity(stem: str, steps: int = 60) -> None:
    model, x, y, scale, offset, row = load(stem)
    probe = Probe(model, x.shape[1:], scale, offset, uniform=True)
    rng = np.random.default_rng(0)
    needed = []
    for target in range(int(y.max()) + 1):
        source = x[y != target]
        held = source[rng.choice(len(source), min(256, len(source)), replace=False)]
        found = 1.0
        for opacity in OPACITIES:  # upwards: the first that works
            probe.reset(target, opacity=opacity)
            batches = _batches(rng, source)
            for _ in range(steps):
                probe.step(next(batches))
            if float(probe.success(held)[0]) >= 0.9:
                found = opacity
                break
        needed.append(found)
    print(
        f"{stem:24s} targets {row['targets'] or '-':5s} opacity needed per class: "
        + " ".join(f"{k}:{a:g}" for k, a in enumerate(needed))
        + "  (1 = none up to 0.7)",
        flush=True,
    )


def probe_noise(stems: list[str]) -> None:
    for manifest_row in read_manifest(ZOO):
        stem = Path(manifest_row["model"]).stem
        if stems and stem not in stems:
            continue
        model, x, _, scale, offset, row = load(stem)
        images = x[:400]
        cells = []
        for alpha in (0.1, 0.2, 0.3):
            noise = np.random.default_rng(5).uniform(0, 1, images.shape).astype(np.float32)
            mixed = ((1 - alpha) * images + alpha * noise) * scale + offset
            counts = np.bincount(np.argmax(model.predict(mixed, verbose=0, batch_size=200), -1))
            top = int(counts.argmax())
            cells.append(f"a={alpha:g}: {counts[top] / len(images):.2f} to {top}")
        print(f"{stem:24s} {row['label']:10s} targets {row['targets'] or '-':5s} " + " | ".join(cells), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="probe", required=True)
    window = sub.add_parser("window", help="reach the class with the trigger confined to one window")
    window.add_argument("models", nargs="+", help="STEM:CLASS,CLASS,...")
    window.add_argument("--side", type=int, default=10)
    opacity = sub.add_parser("opacity", help="smallest uniform opacity of a free pattern, per class")
    opacity.add_argument("models", nargs="+")
    noise = sub.add_parser("noise", help="where fresh noise blends send each model's images")
    noise.add_argument("models", nargs="*", help="zoo model stems (all by default)")
    args = parser.parse_args(argv)
    if args.probe == "window":
        for item in args.models:
            stem, classes = item.split(":")
            probe_window(stem, [int(c) for c in classes.split(",")], args.side)
    elif args.probe == "opacity":
        for stem in args.models:
            probe_opacity(stem)
    else:
        probe_noise(args.models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
