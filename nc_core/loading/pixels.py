"""The pixel range a model expects, and the map between it and the unit range [0, 1].

Neural Cleanse bounds the trigger's pattern to valid pixels, so the optimisation works in the
unit range and maps to the model's own input range just before the model:
``model_input = unit * scale + offset`` (per channel). Getting this wrong silently flips
verdicts, so the range is guessed from the data and always shown and overridable.

    >>> PixelRange.parse("0-255").to_unit(np.array([0.0, 51.0, 255.0]))
    array([0. , 0.2, 1. ], dtype=float32)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nc_core.errors import InvalidParameterError

NAMED_RANGES = ("0-1", "0-255", "-1-1")


@dataclass(frozen=True)
class PixelRange:
    """An affine map from unit pixels to model inputs: ``model = unit * scale + offset``.

    ``name`` is one of ``0-1``, ``0-255``, ``-1-1`` or ``meanstd``; ``scale`` and ``offset`` are
    tuples with one value, or one per channel.
    """

    name: str
    scale: tuple[float, ...]
    offset: tuple[float, ...]

    @classmethod
    def parse(cls, text: str) -> PixelRange:
        """Read ``0-1``, ``0-255``, ``-1-1`` or ``meanstd:M1,M2,M3/S1,S2,S3`` (unit-range stats).

        >>> PixelRange.parse("meanstd:0.5/0.25").scale
        (4.0,)
        """
        text = text.strip().lower()
        if text == "0-1":
            return cls("0-1", (1.0,), (0.0,))
        if text == "0-255":
            return cls("0-255", (255.0,), (0.0,))
        if text in ("-1-1", "-1..1", "-1,1"):
            return cls("-1-1", (2.0,), (-1.0,))
        if text.startswith("meanstd:"):
            return cls._parse_meanstd(text[len("meanstd:") :])
        raise InvalidParameterError(
            f"Unknown pixel range {text!r}: use 0-1, 0-255, -1-1 or meanstd:MEAN/STD "
            "(per channel, comma-separated, statistics of pixels in [0, 1])."
        )

    @classmethod
    def _parse_meanstd(cls, body: str) -> PixelRange:
        try:
            mean_text, std_text = body.split("/")
            mean = tuple(float(v) for v in mean_text.split(","))
            std = tuple(float(v) for v in std_text.split(","))
        except ValueError:
            raise InvalidParameterError(
                f"Cannot read mean/std {body!r}: write it as meanstd:0.485,0.456,0.406/0.229,0.224,0.225."
            ) from None
        if len(mean) != len(std) or not all(np.isfinite(mean + std)) or min(std) <= 0:
            raise InvalidParameterError("Mean and std need the same number of finite values, std above 0.")
        return cls.from_meanstd(mean, std)

    @classmethod
    def from_meanstd(cls, mean: tuple[float, ...], std: tuple[float, ...]) -> PixelRange:
        """The range of ``(unit - mean) / std``."""
        return cls(
            "meanstd",
            tuple(1.0 / s for s in std),
            tuple(-m / s for m, s in zip(mean, std)),
        )

    @property
    def label(self) -> str:
        """Text that :meth:`parse` reads back, e.g. ``0-255`` or ``meanstd:0.5/0.25``."""
        if self.name != "meanstd":
            return self.name
        std = [1.0 / s for s in self.scale]
        mean = [-o * s for o, s in zip(self.offset, std)]
        return "meanstd:" + ",".join(f"{m:.6g}" for m in mean) + "/" + ",".join(f"{s:.6g}" for s in std)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """Model inputs to unit pixels (float32)."""
        return ((np.asarray(x, np.float32) - np.float32(self.offset)) / np.float32(self.scale)).astype(np.float32)

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Unit pixels to model inputs (float32)."""
        return (np.asarray(u, np.float32) * np.float32(self.scale) + np.float32(self.offset)).astype(np.float32)


def guess_pixel_range(x: np.ndarray) -> PixelRange:
    """Guess the model's input range from a sample of its inputs.

    Integer-valued data above 1 is ``0-255``; data in [0, 1] is ``0-1``; data in [-1, 1] with
    negatives is ``-1-1``; anything else is taken as standardised and mapped back per channel so
    that the observed minimum and maximum become 0 and 1.

    >>> guess_pixel_range(np.array([[0.0, 0.5, 1.0]])).name
    '0-1'
    """
    x = np.asarray(x, np.float32)
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0 + 1e-3:
        return PixelRange.parse("0-1")
    if lo >= 0.0 and hi <= 255.0 + 1e-3:
        return PixelRange.parse("0-255")
    if lo >= -1.0 - 1e-3 and hi <= 1.0 + 1e-3:
        return PixelRange.parse("-1-1")
    axes = tuple(range(x.ndim - 1))
    ch_lo, ch_hi = x.min(axis=axes), x.max(axis=axes)
    std = tuple(float(v) for v in 1.0 / np.maximum(ch_hi - ch_lo, 1e-6))
    mean = tuple(float(-low * s) for low, s in zip(ch_lo, std))
    return PixelRange.from_meanstd(mean, std)
