"""The triggers a repair removes (reversed by a scan) and the real one a user may know.

A reversed trigger comes from a scan report: every flagged class's mask and pattern, or, when
the user forces a repair of a model the scan called clean, the class with the smallest mask. The
real trigger, when known, is only *measured* (its attack success before and after), never trained
on: a repair must work from what the scan found. It comes from a sample's model card (the shipped
samples describe theirs) or from a mask image and a pattern image.

    >>> import json
    >>> card = json.loads(Path("sample_models/signs_backdoored.json").read_text())
    >>> known = trigger_from_card(card, (32, 32, 3))
    >>> known.target, known.l1, known.source
    (33, 16.0, 'model card')
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from nc_core.detection.report import ScanReport
from nc_core.errors import InvalidDataError, InvalidParameterError


@dataclass
class RepairTrigger:
    """A mask ``(H, W)`` in [0, 1] and a pattern ``(H, W, C)`` in unit pixels that send inputs to ``target``."""

    target: int
    mask: np.ndarray
    pattern: np.ndarray
    source: str = "reversed"

    @property
    def l1(self) -> float:
        return float(np.abs(self.mask).sum())


def grown(trigger: RepairTrigger, pixels: int = 1) -> RepairTrigger:
    """The trigger with its mask grown by ``pixels`` on every side, the new border painted with
    the mask-weighted mean of the pattern around it.

    Why: a reversed trigger is the *smallest* mask that works, usually a part of the real patch
    (8 of a 4x4 square's 16 pixels on the shipped signs model). Unlearning only that part leaves
    the rest of the patch half working; its neighbourhood, in the same colours, covers the rest.

    >>> grown(RepairTrigger(0, np.pad(np.ones((1, 1)), 1), np.ones((3, 3, 1)))).l1
    9.0
    """
    mask = np.clip(trigger.mask, 0, 1).astype(np.float32)
    weight, painted = mask, trigger.pattern * mask[..., None]
    for _ in range(pixels):
        weight, painted = _box_sum(weight), _box_sum(painted)
    pattern = np.where(weight[..., None] > 0, painted / np.maximum(weight[..., None], 1e-12), trigger.pattern)
    pattern = np.where(mask[..., None] > 0.5, trigger.pattern, pattern)
    return RepairTrigger(
        trigger.target,
        np.maximum(mask, (weight > 1e-3).astype(np.float32)),
        np.clip(pattern, 0, 1).astype(np.float32),
        source=f"{trigger.source}, grown",
    )


def _box_sum(a: np.ndarray) -> np.ndarray:
    """Sum over each pixel's 3x3 neighbourhood (zero outside the image), on the first two axes."""
    padded = np.pad(a, [(1, 1), (1, 1)] + [(0, 0)] * (a.ndim - 2))
    height, width = a.shape[:2]
    return sum(padded[i : i + height, j : j + width] for i in range(3) for j in range(3))


def triggers_to_remove(report: ScanReport, force: bool = False) -> list[RepairTrigger]:
    """The flagged classes' reversed triggers; with ``force``, the smallest class's when none is flagged.

    Refuses a clean or inconclusive verdict without ``force``: unlearning a natural class's
    trigger only costs accuracy, so it has to be asked for.
    """
    by_class = {r.target: r for r in report.results}
    targets = list(report.flagged)
    if not targets:
        if not force:
            raise InvalidParameterError(
                f"The scan's verdict is {report.verdict}: there is no backdoor to remove. "
                "Force the repair (--force) to unlearn the class with the smallest mask anyway."
            )
        targets = [min(report.rows, key=lambda row: row.judged_l1).class_id] if report.rows else []
    missing = [t for t in targets if t not in by_class]
    if not targets or missing:
        raise InvalidDataError(
            "The scan report holds no mask and pattern for the classes to repair "
            f"{missing or ''}; use a report written with its arrays (scan --out)."
        )
    return [RepairTrigger(t, _mask_2d(by_class[t].mask), np.asarray(by_class[t].pattern, np.float32)) for t in targets]


def check_trigger(trigger: RepairTrigger, input_shape: tuple[int, ...], num_classes: int, what: str) -> None:
    """Refuse a trigger a repair cannot use: a target outside the model's classes, a mask or a
    pattern of another image size, or values that are not finite (a NaN mask would train the
    model into NaN weights).

    >>> check_trigger(RepairTrigger(999, np.zeros((4, 4)), np.zeros((4, 4, 1))), (4, 4, 1), 10, "the real trigger")
    Traceback (most recent call last):
    nc_core.errors.InvalidDataError: The real trigger sends inputs to class 999, but the model has classes 0 to 9.
    """
    height, width, channels = (tuple(input_shape) + (1,))[:3]
    mask, pattern = np.asarray(trigger.mask), np.asarray(trigger.pattern)
    if mask.shape != (height, width) or pattern.shape != (height, width, channels):
        raise InvalidDataError(
            f"{what[0].upper()}{what[1:]} has a {'x'.join(map(str, mask.shape))} mask and a "
            f"{'x'.join(map(str, pattern.shape))} pattern, but the images are {height}x{width}x{channels}: "
            "it comes from a scan of another model or data."
        )
    target = trigger.target
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < num_classes:
        raise InvalidDataError(
            f"{what[0].upper()}{what[1:]} sends inputs to class {target}, but the model has "
            f"classes 0 to {num_classes - 1}."
        )
    for name, values in (("mask", mask), ("pattern", pattern)):
        if values.dtype.kind not in "fiu" or not np.isfinite(values).all():
            raise InvalidDataError(
                f"{what[0].upper()}{what[1:]} has a {name} that is not finite numbers (NaN or "
                "infinity): repairing with it would ruin the model."
            )


def _mask_2d(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, np.float32)
    return mask.max(axis=-1) if mask.ndim == 3 else mask


def trigger_from_card(card: dict, input_shape: tuple[int, int, int]) -> RepairTrigger:
    """The real trigger a model card describes: a patch of ``size`` (or an explicit ``pattern``,
    values 0-255) at ``row``, ``col``, on every channel, sending inputs to ``target``.

    >>> trigger_from_card({"target": 7, "trigger": {"kind": "patch", "size": 2, "row": 0, "col": 0,
    ...                    "value": 255}}, (4, 4, 1)).l1
    4.0
    """
    spec = card.get("trigger") if isinstance(card, dict) else None
    if not isinstance(spec, dict) or spec.get("kind") != "patch" or "target" not in card:
        raise InvalidDataError(
            "The model card describes no patch trigger with its target "
            '(it needs "target" and a "trigger" of kind "patch").'
        )
    try:
        values = spec.get("pattern") or np.full((int(spec["size"]),) * 2, float(spec.get("value", 255)))
        patch = np.asarray(values, np.float32) / 255.0
        row, col, target = int(spec["row"]), int(spec["col"]), int(card["target"])
    except (KeyError, TypeError, ValueError):
        raise InvalidDataError("The model card's trigger needs size (or pattern), row, col and value.") from None
    height, width, channels = input_shape
    h, w = patch.shape[:2] if patch.ndim >= 2 else (0, 0)
    if patch.ndim != 2 or not (0 <= row and 0 <= col and row + h <= height and col + w <= width):
        raise InvalidDataError(
            f"The model card's {h}x{w} trigger at ({row}, {col}) does not fit {height}x{width} images."
        )
    mask = np.zeros((height, width), np.float32)
    pattern = np.zeros((height, width, channels), np.float32)
    mask[row : row + h, col : col + w] = 1.0
    pattern[row : row + h, col : col + w, :] = np.clip(patch, 0, 1)[..., None]
    return RepairTrigger(target, mask, pattern, source="model card")


def trigger_from_images(
    mask_png: bytes | Path, pattern_png: bytes | Path, target: int, input_shape: tuple[int, int, int]
) -> RepairTrigger:
    """The real trigger as two images of the input's size: a grey mask (white = trigger) and a pattern."""
    height, width, channels = input_shape
    mask = _image(mask_png, "L", "mask")[..., 0]
    pattern = _image(pattern_png, "L" if channels == 1 else "RGB", "pattern")
    if mask.shape != (height, width) or pattern.shape[:2] != (height, width):
        raise InvalidDataError(
            f"The trigger images are {mask.shape[1]}x{mask.shape[0]} and "
            f"{pattern.shape[1]}x{pattern.shape[0]}; the model takes {width}x{height}."
        )
    if channels not in (1, 3):
        pattern = np.repeat(pattern[..., :1], channels, axis=-1)
    return RepairTrigger(int(target), mask, pattern, source="images")


def _image(source: bytes | Path, mode: str, what: str) -> np.ndarray:
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        with Image.open(io.BytesIO(data), formats=("PNG", "BMP")) as image:
            if image.width * image.height > 4096 * 4096:
                raise InvalidDataError(f"The trigger {what} image is too large.")
            pixels = np.asarray(image.convert(mode), np.float32) / 255.0
    except InvalidDataError:
        raise
    except Exception:  # OSError for missing files, Pillow's errors for non-images
        raise InvalidDataError(f"The trigger {what} is not a readable PNG or BMP image.") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels
