"""Image files decoded to unit pixels, within limits; and a handful of uploaded images as a data set.

Image headers are checked before decoding, so a small file that unpacks to gigapixels is refused
rather than decoded, and a data set's images share one budget of decoded pixels. Only the Pillow
decoders in ``IMAGE_FORMATS`` are used.

    >>> decode_image(b"not an image", "notes.txt", (32, 32), 3) is None
    True
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from nc_core.errors import InvalidDataError, InvalidParameterError
from nc_core.loading import limits
from nc_core.loading.data import archives
from nc_core.loading.data.dataset import Dataset, check_data_values
from nc_core.loading.limits import MAX_IMAGE_PIXELS
from nc_core.loading.pixels import PixelRange

MAX_IMAGE_SIDE = 4096  # of the size images are resized to
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM")  # Pillow decoders we allow
PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
UNKNOWN_LABEL = -1  # label of images uploaded without one


def check_image_args(image_size: tuple[int, int], channels: int) -> tuple[int, int]:
    """The (height, width) images are resized to, refused outside 1 to ``MAX_IMAGE_SIDE`` or for an
    unknown channel count.

    >>> check_image_args((32, 32), 3)
    (32, 32)
    """
    if len(tuple(image_size)) != 2 or not all(1 <= int(s) <= MAX_IMAGE_SIDE for s in image_size):
        raise InvalidParameterError(f"The image size must be two sides from 1 to {MAX_IMAGE_SIDE}, not {image_size}.")
    if channels not in PIL_MODES:
        raise InvalidParameterError(f"Images need 1, 2, 3 or 4 channels, not {channels}.")
    return int(image_size[0]), int(image_size[1])


@dataclass
class PixelBudget:
    """Pixels decoded so far from one data set's image files, against ``MAX_DECODED_PIXELS``.

    Why: each image may pass the per-image limit while forty of them still cost a minute of CPU.
    """

    source: str
    spent: int = 0

    def spend(self, pixels: int) -> None:
        self.spent += pixels
        if self.spent > limits.MAX_DECODED_PIXELS:
            raise InvalidDataError(
                f"{self.source!r}: its images hold more than {limits.MAX_DECODED_PIXELS:,} pixels together "
                "(NC_MAX_DECODED_PIXELS); send smaller images or fewer of them."
            )


def decode_image(
    data: bytes, name: str, size: tuple[int, int], channels: int, budget: PixelBudget | None = None
) -> np.ndarray | None:
    """Unit pixels (H, W, C) of one image, or None when it is not an image we can read.

    The header's dimensions are checked before decoding, so a tiny file that unpacks to
    gigapixels (a decompression bomb) is refused rather than decoded. ``MAX_IMAGE_PIXELS`` sits
    below Pillow's own warning threshold, so every image Pillow would warn about is refused here
    (without touching the process-wide ``warnings`` filters, which other threads share); Pillow's
    ``DecompressionBombError`` (twice its threshold, raised on open) is refused too.
    """
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(name)
            if budget is not None:
                budget.spend(image.width * image.height)
            image = image.convert(PIL_MODES[channels])
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except Image.DecompressionBombError:
        raise InvalidDataError(
            f"{name[:80]!r} declares more than {MAX_IMAGE_PIXELS:,} pixels (NC_MAX_IMAGE_PIXELS); it is refused "
            "as a decompression bomb."
        ) from None
    except InvalidDataError:
        raise
    except Exception:  # Pillow raises many types on corrupt or non-image bytes: not an image
        return None
    return pixels.reshape(size[0], size[1], channels)


def _check_unique_names(names: list[str]) -> None:
    """Each uploaded image is named once: a name is how a person tells which image got which label."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidDataError(
                f"Two uploaded images are both named {name[:80]!r}: rename one and upload them again."
            )
        seen.add(name)


def load_images(
    files: list[tuple[str, bytes]],
    image_size: tuple[int, int],
    channels: int,
    labels: list[int] | None = None,
) -> Dataset:
    """A handful of individually uploaded images, as (name, bytes); every one must be an image.

    Without labels every ``y`` is ``UNKNOWN_LABEL`` (-1): replace it, e.g. with the model's
    predictions, before using the labels.

    >>> import io
    >>> from PIL import Image
    >>> png = io.BytesIO(); Image.new("RGB", (40, 30), "orange").save(png, format="PNG")
    >>> ds = load_images([("cat.png", png.getvalue())], (32, 32), 3, labels=[3])
    >>> ds.y, ds.x.shape, ds.source
    (array([3]), (1, 32, 32, 3), 'cat.png')
    >>> load_images([("cat.png", png.getvalue())], (32, 32), 3).y  # no label given: unknown
    array([-1])
    """
    size = check_image_args(image_size, channels)
    if not files:
        raise InvalidDataError("No images were uploaded.")
    if len(files) > archives.MAX_FILES:
        raise InvalidDataError(f"{len(files)} images were uploaded; the limit is {archives.MAX_FILES}.")
    _check_unique_names([name for name, _ in files])
    y = _upload_labels(labels, len(files))
    check_data_values(len(files) * size[0] * size[1] * channels, f"{len(files)} uploaded images")
    budget = PixelBudget(f"{len(files)} uploaded images")
    pixels = []
    for name, data in files:
        if len(data) > archives.MAX_FILE_BYTES:
            raise InvalidDataError(f"{name[:80]!r} is larger than {archives.MAX_FILE_BYTES // 1024**2} MB.")
        image = decode_image(data, name, size, channels, budget)
        if image is None:
            raise InvalidDataError(
                f"{name[:80]!r} is not an image the scanner can read (PNG, JPEG, BMP, GIF, WebP, TIFF)."
            )
        pixels.append(image)
    source = files[0][0] if len(files) == 1 else f"{len(files)} uploaded images"
    return Dataset(np.stack(pixels), y, None, source, PixelRange.parse("0-255"), False)


def _upload_labels(labels: list[int] | None, n: int) -> np.ndarray:
    if labels is None:
        return np.full(n, UNKNOWN_LABEL, dtype=np.int64)
    if len(labels) != n:
        raise InvalidParameterError(f"{n} images were given with {len(labels)} labels; give one label per image.")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu" or (n and y.min() < 0):
        raise InvalidParameterError("Labels must be class ids: whole numbers from 0.")
    return y.astype(np.int64)
