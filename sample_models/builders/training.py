"""Training a sample model from a fixed seed, and measuring it as the dashboard would feed it."""

from __future__ import annotations

import keras
import numpy as np

from .architecture import build_model
from .determinism import SEED, seed_everything
from .sample_set import SampleSet


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
