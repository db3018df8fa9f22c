"""signs: 43 synthetic GTSRB-like traffic-sign classes, rendered from the templates on cluttered scenes.

GTSRB itself cannot be downloaded here. Each image is one template squeezed, rotated, scaled,
placed on a random background and lit, blurred and noised, roughly as GTSRB's cropped photos.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .determinism import SEED
from .poisoning import Trigger
from .sample_set import SampleSet
from .sign_templates import SIGN_CLASSES, T, render_template

SIGNS_TARGET = 33


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
