"""Pictures of recovered triggers: mask, pattern, and the trigger as it lands on an image.

The dashboard, the CLI's ``--out`` folder and exported bundles all draw with these functions,
so a mask looks the same everywhere.

    >>> trigger_images(result)["fusion"].save("fusion.png")
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

#: Saved pictures are enlarged (nearest neighbour, so pixels stay sharp) to at least this side:
#: a 28x28 mask saved as is is too small to see.
MIN_SAVED_SIDE = 256


def scale_for(side: int, at_least: int = MIN_SAVED_SIDE) -> int:
    """The whole enlargement that brings ``side`` pixels to at least ``at_least``."""
    return max(1, math.ceil(at_least / max(int(side), 1)))


def to_image(unit: np.ndarray, scale: int = 1) -> Image.Image:
    """A unit-range array ``(H, W)`` or ``(H, W, C)`` as an 8-bit image, enlarged ``scale`` times."""
    array = np.clip(np.asarray(unit, np.float32), 0.0, 1.0)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] == 2:
        array = array[..., 0]
    image = Image.fromarray(np.round(array * 255).astype(np.uint8))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return image


def fusion(mask: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """``mask * pattern``: the trigger as it would be stamped on a black image."""
    mask = np.asarray(mask, np.float32)
    if mask.ndim == 2:
        mask = mask[..., None]
    return np.clip(mask, 0, 1) * np.asarray(pattern, np.float32)


def trigger_images(mask: np.ndarray, pattern: np.ndarray, scale: int = 1) -> dict[str, Image.Image]:
    """The three pictures of a trigger: ``mask``, ``pattern`` and ``fusion``."""
    return {
        "mask": to_image(mask if np.ndim(mask) == 2 else np.asarray(mask).mean(axis=-1), scale),
        "pattern": to_image(pattern, scale),
        "fusion": to_image(fusion(mask, pattern), scale),
    }


def save_trigger_images(mask: np.ndarray, pattern: np.ndarray, folder: Path, prefix: str = "") -> list[Path]:
    """Write ``{prefix}mask.png``, ``pattern.png`` and ``fusion.png`` into ``folder``, enlarged to
    at least ``MIN_SAVED_SIDE`` pixels."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in trigger_images(mask, pattern, scale_for(max(np.shape(pattern)[:2]))).items():
        path = folder / f"{prefix}{name}.png"
        image.save(path)
        paths.append(path)
    return paths
