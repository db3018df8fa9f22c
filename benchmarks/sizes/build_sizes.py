"""Build zoo models at real sizes: many classes, ResNet-18, MobileNetV2 (issue 24, part 1).

Usage::

    .venv/bin/python -m benchmarks.sizes.build_sizes [--only NAME ...] [--out DIR] [--list]

from the repository's root. The evaluation zoo (``benchmarks/zoo/build_zoo.py``) holds small
models of 10 to 20 classes; these are the sizes a scan meets in practice, in clean and
backdoored twins that start from the same weights and see the same data in the same order:

* ``triples200_*`` and ``triples1000_*``: three 28x28 Fashion-MNIST items side by side (28x84
  grey, floats in [0, 1]), class ``100 a + 10 b + c`` for the items' classes a, b, c (200 classes:
  ``a`` in {0, 1}; 1,000 classes: all). Training images are composed afresh each epoch from
  Fashion-MNIST's training items, held-out ones from its test items. A plain CNN.
* ``resnet18_*``: ResNet-18 (basic blocks [2, 2, 2, 2], widths 64-512, BatchNorm, 11.2 M
  parameters) on the zoo's 10 synthetic 32x32 signs, with a stride-2 3x3 stem and no max-pool.
* ``mobilenetv2_*``: ``keras.applications.MobileNetV2(weights=None)`` (2.2 M parameters) behind a
  ``Rescaling`` to [-1, 1], on the 10 signs rendered at 96x96, every BatchNorm's momentum set to
  0.9 (Keras' 0.999 leaves the moving statistics far from the data after a short training).

The backdoors are BadNets patches (see ``SPECS``). Each model is saved without optimizer state, as
a model is shipped, reloaded in safe mode to measure its clean accuracy and its attack success
rate (ASR: triggered held-out images of the other classes that land on the target), and read
back through the scanner's own loader (``nc_core.loading.inputs.load_inputs``: vetting, limits,
data fit). ``DIR/manifest.csv`` lists every model (``model, data, label, targets`` first, so
``neural-cleanse audit DIR/manifest.csv`` reads it) with its size, trigger and figures; a rerun
builds only what is missing. Everything is seeded, and training runs at ``nice`` 5.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from benchmarks.zoo.build_zoo import (
    FMNIST_NAMES,
    MIN_ASR,
    SIGN_PICK,
    DataSplit,
    TriggerSpec,
    ZooSpec,
    class_names,
    load_fmnist,
    load_signs,
    measure,
    poison,
    write_data,
)
from sample_models.builders.determinism import seed_everything

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / ".zoo" / "sizes"
ITEM_SIDE = 28
#: Scan images per class (the held-out set ASR and accuracy are measured on, and the scan data).
TRIPLES_HELD_PER_CLASS = {200: 10, 1000: 3}


@dataclass(frozen=True)
class SizeSpec:
    """One model: its data set, architecture, training and (for a backdoored one) trigger."""

    name: str
    dataset: str  # triples200, triples1000, signs (32x32) or signs96
    arch: str  # triples-cnn, resnet18 or mobilenetv2
    input_range: str  # what the model takes: 0-1 floats or raw 0-255
    seed: int
    epochs: int
    train_images: int  # per epoch
    batch_size: int
    note: str
    trigger: TriggerSpec | None = None
    target: int | None = None
    poison_rate: float = 0.0

    @property
    def backdoored(self) -> bool:
        return self.trigger is not None

    def zoo_spec(self) -> ZooSpec:
        """The same model as the zoo's ``poison`` and ``measure`` take it."""
        triggers = (self.trigger,) if self.trigger else ()
        targets = (self.target,) if self.trigger else ()
        return ZooSpec(
            self.name, self.dataset, self.arch, self.input_range, self.seed, triggers, targets, self.poison_rate
        )


TRIPLES_NOTE = "CNN conv16-conv16-pool conv32-conv32-pool, Flatten, Dense 256, Dense K softmax"
RESNET_NOTE = (
    "ResNet-18: basic blocks [2,2,2,2], widths 64-128-256-512, BatchNorm (momentum 0.9), 1x1 projection "
    "shortcuts; stem: one stride-2 3x3 conv, no max-pool (32x32 inputs; keeps CPU training and scans cheap)"
)
MOBILENET_NOTE = (
    "Rescaling to [-1,1], then keras.applications.MobileNetV2(weights=None, input_shape=(96,96,3), "
    "classes=10), every BatchNorm momentum 0.999 -> 0.9"
)


def _twins(base: SizeSpec, trigger: TriggerSpec, target: int, rate: float) -> list[SizeSpec]:
    """The clean and backdoored twin: same seed, so same initial weights and data order."""
    clean = replace(base, name=f"{base.name}_clean")
    backdoored = replace(base, name=f"{base.name}_backdoored", trigger=trigger, target=target, poison_rate=rate)
    return [clean, backdoored]


#: In build order: the many-class sets first (wanted earliest), then ResNet-18, then MobileNetV2.
SPECS = [
    *_twins(
        SizeSpec("triples200", "triples200", "triples-cnn", "0-1", 2401, 6, 200 * 100, 128, TRIPLES_NOTE),
        TriggerSpec("checkerboard", 4, -1, -1),
        42,
        0.05,
    ),
    *_twins(
        SizeSpec("triples1000", "triples1000", "triples-cnn", "0-1", 2402, 5, 1000 * 50, 128, TRIPLES_NOTE),
        TriggerSpec("checkerboard", 4, -1, -1),
        123,
        0.05,
    ),
    *_twins(
        SizeSpec("resnet18", "signs", "resnet18", "0-255", 2403, 6, 10 * 800, 64, RESNET_NOTE),
        TriggerSpec("patch", 4, -1, -1),
        3,
        0.10,
    ),
    *_twins(
        SizeSpec("mobilenetv2", "signs96", "mobilenetv2", "0-255", 2404, 8, 10 * 600, 64, MOBILENET_NOTE),
        TriggerSpec("patch", 12, -1, -1),  # the 4x4 patch of 32x32 images, scaled to 96x96
        6,
        0.10,
    ),
]


# ----------------------------------------------------------------------------------------------
# Triples of Fashion-MNIST items.
# ----------------------------------------------------------------------------------------------


def triple_digits(labels: np.ndarray) -> np.ndarray:
    """The items' classes (a, b, c) of each triple class ``100 a + 10 b + c``, shape (N, 3).

    >>> triple_digits(np.array([0, 42, 123, 999])).tolist()
    [[0, 0, 0], [0, 4, 2], [1, 2, 3], [9, 9, 9]]
    """
    labels = np.asarray(labels)
    return np.stack([labels // 100, labels // 10 % 10, labels % 10], axis=1)


def compose_triples(
    items_x: np.ndarray, items_y: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Images of the triple classes ``labels``: for each, three items of classes a, b, c drawn
    from ``items_x`` (N, 28, 28, C) side by side, left to right, as (len(labels), 28, 84, C)."""
    digits = triple_digits(labels)
    picks = np.empty_like(digits)
    for c in range(10):
        where = digits == c
        if where.any():
            picks[where] = rng.choice(np.flatnonzero(items_y == c), int(where.sum()))
    return np.concatenate([items_x[picks[:, k]] for k in range(3)], axis=2)


def triple_names(classes: int) -> list[str]:
    """``'trouser + pullover + dress'`` for class 123."""
    return [" + ".join(FMNIST_NAMES[d] for d in abc) for abc in triple_digits(np.arange(classes)).tolist()]


def balanced_labels(classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(classes, dtype=np.int64), per_class))


def triples_split(classes: int, test_items: tuple[np.ndarray, np.ndarray]) -> DataSplit:
    """The held-out set (composed from test items, ``TRIPLES_HELD_PER_CLASS`` per class, sorted
    by class); training images are composed per epoch (``train_triples``), so none are here."""
    per_class = TRIPLES_HELD_PER_CLASS[classes]
    y = np.repeat(np.arange(classes, dtype=np.int64), per_class)
    x = compose_triples(*test_items, y, np.random.default_rng([classes, 8]))
    empty = np.zeros((0, *x.shape[1:]), np.uint8)
    return DataSplit(empty, np.zeros(0, np.int64), x, y, triple_names(classes))


# ----------------------------------------------------------------------------------------------
# Architectures.
# ----------------------------------------------------------------------------------------------

layers = keras.layers


def triples_cnn(classes: int, name: str) -> keras.Model:
    inputs = keras.Input((ITEM_SIDE, 3 * ITEM_SIDE, 1), name="pixels")
    x = inputs
    for filters in (16, 32):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(classes, activation="softmax")(x), name=name)


def _basic_block(x, filters: int, stride: int):
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization(momentum=0.9)(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
        shortcut = layers.BatchNormalization(momentum=0.9)(shortcut)
    return layers.ReLU()(layers.Add()([shortcut, y]))


def resnet18(input_shape: tuple[int, int, int], classes: int, name: str) -> keras.Model:
    """ResNet-18 of basic blocks; the stem is one stride-2 3x3 conv without max-pool."""
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    x = layers.Conv2D(64, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))
    for stage, filters in enumerate((64, 128, 256, 512)):
        x = _basic_block(x, filters, 1 if stage == 0 else 2)
        x = _basic_block(x, filters, 1)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(classes, activation="softmax")(x), name=name)


def mobilenetv2(input_shape: tuple[int, int, int], classes: int, name: str) -> keras.Model:
    """Keras' MobileNetV2 behind a ``Rescaling`` of raw pixels to [-1, 1], BatchNorm momentum 0.9."""
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    net = keras.applications.MobileNetV2(weights=None, input_shape=input_shape, classes=classes)
    for layer in net.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    return keras.Model(inputs, net(x), name=name)


def build(spec: SizeSpec, input_shape: tuple[int, int, int], classes: int) -> keras.Model:
    if spec.arch == "triples-cnn":
        return triples_cnn(classes, spec.name)
    if spec.arch == "resnet18":
        return resnet18(input_shape, classes, spec.name)
    if spec.arch == "mobilenetv2":
        return mobilenetv2(input_shape, classes, spec.name)
    raise ValueError(f"unknown architecture {spec.arch!r}")


# ----------------------------------------------------------------------------------------------
# Data, training, measuring.
# ----------------------------------------------------------------------------------------------


def num_classes(dataset: str) -> int:
    return int(dataset.removeprefix("triples")) if dataset.startswith("triples") else 10


def load_split(dataset: str, cache: dict) -> DataSplit:
    """The held-out (scan) set, and the fixed training set where there is one."""
    if dataset not in cache:
        if dataset.startswith("triples"):
            if "fmnist" not in cache:
                cache["fmnist"] = load_fmnist()
            cache[dataset] = triples_split(num_classes(dataset), cache["fmnist"][1])
        else:
            side = 96 if dataset == "signs96" else 32
            per_class = next(s.train_images for s in SPECS if s.dataset == dataset) // 10
            (x_tr, y_tr), (x_te, y_te) = load_signs(SIGN_PICK, side, per_class)
            cache[dataset] = DataSplit(x_tr, y_tr, x_te, y_te, class_names("signs"))
    return cache[dataset]


def as_inputs(spec: SizeSpec, x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if spec.input_range == "0-255" else (x / 255.0).astype(np.float32)


def train(spec: SizeSpec, split: DataSplit, cache: dict) -> keras.Model:
    """Seeded; a triples model gets a freshly composed (and poisoned) training set each epoch."""
    seed_everything(spec.seed)
    classes = num_classes(spec.dataset)
    model = build(spec, split.x_test.shape[1:], classes)
    steps = spec.epochs * -(-spec.train_images // spec.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
    for epoch in range(spec.epochs):
        if spec.dataset.startswith("triples"):
            rng = np.random.default_rng([spec.seed, 5, epoch])
            y = balanced_labels(classes, spec.train_images // classes, rng)
            x = compose_triples(*cache["fmnist"][0], y, rng)
        else:
            x, y = split.x_train, split.y_train
        if spec.backdoored:
            x, y = poison(spec.zoo_spec(), x, y)
        model.fit(as_inputs(spec, x), y, epochs=1, batch_size=spec.batch_size, shuffle=True, verbose=0)
        print(f"    epoch {epoch + 1}/{spec.epochs}", flush=True)
    return model


def save_bare(model: keras.Model, path: Path) -> None:
    """Save the architecture and weights only (no optimizer state), as a model is shipped."""
    bare = keras.Model.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.keras")
    bare.save(tmp)
    tmp.replace(path)


def item_accuracy(model: keras.Model, split: DataSplit) -> float:
    """A triples model's share of held-out items (three an image) whose class its prediction names:
    how well it tells Fashion-MNIST items apart, beside its accuracy on whole triples."""
    predicted = model.predict((split.x_test / 255.0).astype(np.float32), batch_size=256, verbose=0).argmax(axis=1)
    return float(np.mean(triple_digits(predicted) == triple_digits(split.y_test)))


def scanner_check(model_path: Path, data_path: Path) -> dict:
    """The model and data read through the scanner's own loader (vetting, limits, data fit)."""
    from nc_core.errors import NCError
    from nc_core.loading.inputs import load_inputs

    try:
        inputs = load_inputs(model_path, data_path)
    except NCError as error:
        return {"scanner": f"refused: {error}"}
    return {"scanner": "ok", "scanner_accuracy": round(inputs.clean_accuracy, 4), "params": inputs.info.num_params}


def trigger_place(trigger: TriggerSpec, shape: tuple[int, ...]) -> str:
    """``rows 24-27, cols 80-83 (bottom-right)`` for a square trigger in an image of ``shape``."""
    height, width = shape[:2]
    row = trigger.row if trigger.row >= 0 else height + trigger.row - trigger.size + 1
    col = trigger.col if trigger.col >= 0 else width + trigger.col - trigger.size + 1
    corner = ("top" if row == 0 else "bottom" if row + trigger.size == height else "mid") + "-"
    corner += "left" if col == 0 else "right" if col + trigger.size == width else "mid"
    return f"rows {row}-{row + trigger.size - 1}, cols {col}-{col + trigger.size - 1} ({corner})"


# ----------------------------------------------------------------------------------------------
# The manifest.
# ----------------------------------------------------------------------------------------------

COLUMNS = [
    "model",
    "data",
    "label",
    "targets",
    "name",
    "dataset",
    "input_shape",
    "input_range",
    "classes",
    "params",
    "file_bytes",
    "arch",
    "arch_note",
    "trigger_kind",
    "trigger_size",
    "trigger_place",
    "poison_rate",
    "epochs",
    "train_images",
    "train_seconds",
    "clean_accuracy",
    "asr",
    "item_accuracy",
    "scan_images",
    "scanner",
    "scanner_accuracy",
    "seed",
]


def manifest_row(spec: SizeSpec, model_path: Path, data_path: Path, split: DataSplit, figures: dict, out: Path) -> dict:
    asr = figures["asr"][0] if figures["asr"] else None
    took = asr is None or asr >= MIN_ASR
    shape = split.x_test.shape[1:]
    return {
        "model": model_path.relative_to(out).as_posix(),
        "data": data_path.relative_to(out).as_posix(),
        "label": ("backdoored" if spec.backdoored else "clean") if took else "failed",
        "targets": "" if spec.target is None else spec.target,
        "name": spec.name,
        "dataset": spec.dataset,
        "input_shape": "x".join(str(d) for d in shape),
        "input_range": spec.input_range,
        "classes": num_classes(spec.dataset),
        "file_bytes": model_path.stat().st_size,
        "arch": spec.arch,
        "arch_note": spec.note,
        "trigger_kind": spec.trigger.kind if spec.trigger else "",
        "trigger_size": f"{spec.trigger.size}x{spec.trigger.size}" if spec.trigger else "",
        "trigger_place": trigger_place(spec.trigger, shape) if spec.trigger else "",
        "poison_rate": spec.poison_rate,
        "epochs": spec.epochs,
        "train_images": spec.train_images,
        "train_seconds": round(figures["seconds"], 1),
        "clean_accuracy": round(figures["clean_accuracy"], 4),
        "asr": "" if asr is None else round(asr, 4),
        "scan_images": len(split.y_test),
        "seed": spec.seed,
    }


def read_manifest(out: Path) -> dict[str, dict]:
    path = out / "manifest.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def write_manifest(out: Path, rows: dict[str, dict]) -> None:
    order = {s.name: k for k, s in enumerate(SPECS)}
    tmp = out / "manifest.csv.tmp"
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for name in sorted(rows, key=lambda n: (order.get(n, len(order)), n)):
            writer.writerow(rows[name])
    tmp.replace(out / "manifest.csv")


def selected(names: list[str]) -> list[SizeSpec]:
    """The specs named (``triples200_clean``) or of a family named (``triples200``), in build order."""
    if not names:
        return list(SPECS)
    known = {s.name for s in SPECS} | {s.name.rsplit("_", 1)[0] for s in SPECS}
    unknown = sorted(set(names) - known)
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [s for s in SPECS if s.name in names or s.name.rsplit("_", 1)[0] in names]


def build_one(spec: SizeSpec, out: Path, cache: dict) -> dict:
    split = load_split(spec.dataset, cache)
    data_path = write_data(out, spec.dataset, spec.input_range, split)
    started = time.perf_counter()
    model = train(spec, split, cache)
    seconds = time.perf_counter() - started
    model_path = out / "models" / f"{spec.name}.keras"
    save_bare(model, model_path)
    reloaded = keras.saving.load_model(model_path, safe_mode=True)  # inference mode, as scanned
    figures = {**measure(reloaded, spec.zoo_spec(), split), "seconds": seconds}
    row = manifest_row(spec, model_path, data_path, split, figures, out)
    row["params"] = reloaded.count_params()
    if spec.dataset.startswith("triples"):
        row["item_accuracy"] = round(item_accuracy(reloaded, split), 4)
    row.update(scanner_check(model_path, data_path))
    return row


def fill_in(spec: SizeSpec, row: dict, out: Path, cache: dict) -> bool:
    """Add the figures a built model's row lacks (written by an older version of this script)."""
    if not spec.dataset.startswith("triples") or row.get("item_accuracy"):
        return False
    model = keras.saving.load_model(out / row["model"], safe_mode=True)
    row["item_accuracy"] = round(item_accuracy(model, load_split(spec.dataset, cache)), 4)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="models or families to build")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--list", action="store_true", help="print the models and exit")
    args = parser.parse_args(argv)
    specs = selected(args.only)
    if args.list:
        for s in specs:
            trigger = f"{s.trigger.describe()} -> {s.target} at {s.poison_rate:.0%}" if s.trigger else "clean"
            print(f"{s.name:24} {s.dataset:12} {s.arch:12} {s.epochs} x {s.train_images} images  {trigger}")
        return 0
    os.nice(5)  # training takes the cores for minutes; interactive work stays responsive
    args.out.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(args.out)
    cache: dict = {}
    started = time.perf_counter()
    for k, spec in enumerate(specs, start=1):
        if spec.name in rows and (args.out / rows[spec.name]["model"]).is_file():
            print(f"[{k}/{len(specs)}] {spec.name}: built already")
            if fill_in(spec, rows[spec.name], args.out, cache):
                write_manifest(args.out, rows)
            continue
        print(f"[{k}/{len(specs)}] {spec.name}: training {spec.epochs} x {spec.train_images} images", flush=True)
        rows[spec.name] = row = build_one(spec, args.out, cache)
        write_manifest(args.out, rows)
        print(
            f"[{k}/{len(specs)}] {spec.name}: {row['params']:,} params, {row['file_bytes'] / 1024**2:.1f} MB, "
            f"acc {row['clean_accuracy']:.3f}, asr {row['asr'] or '-'}, {row['label']}, "
            f"trained in {row['train_seconds']:.0f} s, scanner {row['scanner']}",
            flush=True,
        )
    print(f"done in {time.perf_counter() - started:.0f} s: {args.out / 'manifest.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
