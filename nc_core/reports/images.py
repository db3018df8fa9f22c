"""Pictures of recovered triggers: mask, pattern, and the trigger as it lands on an image.

The dashboard, the CLI's ``--out`` folder and exported bundles all draw with these functions,
so a mask looks the same everywhere.

    >>> images = trigger_images(result.mask, result.pattern, scale=scale_for(28))
    >>> images["fusion"].size
    (280, 280)
    >>> images["fusion"].save(out / "fusion.png")
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


#: A mask whose mass sits in a box smaller than this share of the image is drawn zoomed too: at
#: its true size a 2x2 trigger on a 28x28 image is a black square with a speck.
ZOOM_BELOW_SHARE = 0.1


def mask_box(mask: np.ndarray, level: float = 0.1) -> tuple[int, int, int, int] | None:
    """``(top, left, bottom, right)`` (exclusive) around the mask's pixels above ``level`` of its
    largest, with one pixel of margin; None for an empty mask.

    >>> mask_box(np.pad(np.ones((2, 2)), 3))
    (2, 2, 6, 6)
    """
    plane = np.abs(np.asarray(mask, np.float32))
    plane = plane.mean(axis=-1) if plane.ndim == 3 else plane
    peak = float(plane.max()) if plane.size else 0.0
    if not np.isfinite(peak) or peak <= 0:
        return None
    rows, cols = np.nonzero(plane >= level * peak)
    height, width = plane.shape
    return (
        max(int(rows.min()) - 1, 0),
        max(int(cols.min()) - 1, 0),
        min(int(rows.max()) + 2, height),
        min(int(cols.max()) + 2, width),
    )


def zoomed_mask(mask: np.ndarray, side: int = 224) -> Image.Image | None:
    """The mask cropped to :func:`mask_box` and enlarged to about ``side`` pixels, outlined in red;
    None when the mask is not small enough to need it."""
    box = mask_box(mask)
    plane = np.asarray(mask, np.float32)
    plane = plane.mean(axis=-1) if plane.ndim == 3 else plane
    if box is None:
        return None
    top, left, bottom, right = box
    if (bottom - top) * (right - left) > ZOOM_BELOW_SHARE * plane.size:
        return None
    crop = plane[top:bottom, left:right]
    image = to_image(crop, scale_for(max(crop.shape), side)).convert("RGB")
    from PIL import ImageDraw

    ImageDraw.Draw(image).rectangle((0, 0, image.width - 1, image.height - 1), outline=(214, 39, 40), width=3)
    return image


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
