"""Clean images a user brings (npz, a zip or folder of class folders, a few files), as a Dataset.

Neural Cleanse works in the unit pixel range, so every loader returns pixels in [0, 1] plus the
:class:`PixelRange` the *model* expects. Files come from strangers: npz files load without
pickle, zips are read in memory with limits on size, member count and compression ratio, image
headers are checked before decoding, and anything unreadable becomes an
:class:`InvalidDataError` with one sentence a user understands.

    >>> ds = load_data("cifar_sample.npz", input_shape=(32, 32, 3)); ds.x.shape
    (500, 32, 32, 3)
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from nc_core.errors import InvalidDataError, InvalidParameterError
from nc_core.loading import limits
from nc_core.loading.limits import MAX_IMAGE_PIXELS, zip_bomb_ratio
from nc_core.loading.pixels import PixelRange, guess_pixel_range

# Limits on untrusted archives and images (module constants so deployments and tests can tune).
MAX_FILES = 50_000  # members of a zip / files under a folder
MAX_TOTAL_BYTES = 512 * 1024**2  # uncompressed size of a whole zip
MAX_FILE_BYTES = 64 * 1024**2  # one image file
MAX_NPZ_BYTES = 1024**3  # declared size of the arrays in an npz
# Also from nc_core.loading.limits (one place, raisable from the environment): the compression-ratio
# rule (zip_bomb_ratio), MAX_IMAGE_PIXELS per image header, MAX_DECODED_PIXELS and MAX_DATA_VALUES per data set.
MAX_ABS_VALUE = 1e6  # larger "pixels" are not images
MAX_CLASS_ID = 100_000
MAX_IMAGE_SIDE = 4096  # of the size images are resized to
PICK_RANGE_SAMPLES = 256
SEED = 0

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM")  # Pillow decoders we allow
PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
UNKNOWN_LABEL = -1  # label of images uploaded without one


@dataclass
class Dataset:
    """Images in the unit range with labels, and the pixel range the model expects.

    ``raw_inputs`` keeps an npz's arrays as stored, so changing the range never compounds a clip.

    >>> ds.model_inputs().max() <= ds.pixel_range.from_unit(np.ones(1)).max()
    True
    """

    x: np.ndarray
    y: np.ndarray
    class_names: list[str] | None
    source: str
    pixel_range: PixelRange
    range_from_data: bool
    raw_inputs: np.ndarray | None = field(default=None, repr=False, compare=False)
    skipped: int = 0  # files that were not readable images

    def model_inputs(self) -> np.ndarray:
        """The images as the model takes them.

        >>> ds.model_inputs().dtype
        dtype('float32')
        """
        return self.pixel_range.from_unit(self.x)

    def with_pixel_range(self, new: PixelRange) -> Dataset:
        """The same data read with another model range.

        When the file stored model inputs (npz) the unit pixels are re-derived from them;
        for images only the range the model expects changes.

        >>> ds.with_pixel_range(PixelRange.parse("0-255")).pixel_range.name
        '0-255'
        """
        if not self.range_from_data:
            return dataclasses.replace(self, pixel_range=new)
        stored = self.raw_inputs if self.raw_inputs is not None else self.model_inputs()
        return dataclasses.replace(self, x=_to_unit(stored, new), pixel_range=new)

    def subset(self, idx: Sequence[int] | np.ndarray) -> Dataset:
        """The samples at ``idx``, everything else kept.

        >>> len(ds.subset([0, 2]))
        2
        """
        idx = np.asarray(idx, dtype=np.int64)
        raw = self.raw_inputs[idx] if self.raw_inputs is not None else None
        return dataclasses.replace(self, x=self.x[idx], y=self.y[idx], raw_inputs=raw)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def num_classes_seen(self) -> int:
        """How many distinct (known) labels the data holds."""
        return len(self.class_counts())

    def class_counts(self) -> dict[int, int]:
        """Samples per known label, in label order.

        >>> ds.class_counts()
        {0: 50, 1: 50}
        """
        labels, counts = np.unique(self.y[self.y >= 0], return_counts=True)
        return {int(label): int(count) for label, count in zip(labels, counts)}


# --------------------------------------------------------------------------- npz


def load_npz(path: str | Path, pixel_range: PixelRange | None = None, max_samples: int | None = None) -> Dataset:
    """Read ``x`` (model inputs, (N,H,W,C) or (N,H,W)), ``y`` and optional ``class_names``.

    Never unpickles; array headers are checked before any array is allocated. Without
    ``pixel_range`` the range is guessed from the values.

    >>> load_npz("mnist_sample.npz").pixel_range.name
    '0-255'
    """
    path = _existing(path, "data file")
    arrays = _read_npz(path)
    x = _images_array(arrays["x"])
    y = _labels_array(arrays["y"], len(x))
    class_names = _class_names(arrays.get("class_names"), y)
    if max_samples is not None and len(x) > _check_max_samples(max_samples):
        idx = stratified_indices(y, max_samples)
        x, y = x[idx], y[idx]
    if not np.all(np.isfinite(x)):
        raise InvalidDataError(f"{path.name!r}: x holds NaN or infinite values; images need finite pixels.")
    peak = max(abs(float(x.min())), abs(float(x.max())))
    if peak > MAX_ABS_VALUE:
        raise InvalidDataError(f"{path.name!r}: x holds values up to {peak:.3g}, too large for pixels.")
    if pixel_range is None:
        pixel_range = guess_pixel_range(x)
    return Dataset(_to_unit(x, pixel_range), y, class_names, path.name, pixel_range, True, raw_inputs=x)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The npz's ``x``, ``y`` and ``class_names`` arrays, after checking their headers."""
    with open(path, "rb") as file:
        magic = file.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise InvalidDataError(
            f"{path.name!r} is not an npz archive: save the data with numpy.savez(path, x=..., y=...)."
        )
    members, names = _check_npz_headers(path)
    missing = [key for key in ("x", "y") if key not in members]
    if missing:
        found = ", ".join(sorted({n[:-4] if n.endswith(".npy") else n for n in names}))[:200] or "none"
        raise InvalidDataError(
            f"{path.name!r} lacks the key {' and '.join(repr(k) for k in missing)} (keys found: {found}); "
            "it needs x (images) and y (labels)."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in ("x", "y", "class_names") if key in members}
    except Exception as error:  # ValueError, BadZipFile, zlib.error, EOFError, MemoryError: damaged
        raise InvalidDataError(f"{path.name!r} is damaged or holds arrays numpy cannot read safely.") from error


def _check_npz_headers(path: Path) -> tuple[dict[str, zipfile.ZipInfo], list[str]]:
    """Our keys -> members, and all member names; refuses object arrays and oversized arrays."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_FILES:
                raise InvalidDataError(f"{path.name!r} holds {len(infos)} arrays; that is too many.")
            members, names = _npz_members(archive), archive.namelist()
            for info in members.values():
                _check_compression_ratio(info, path.name)  # the same zip-bomb rule as data zips
            total = sum(_check_npy_header(archive, info, key, path.name) for key, info in members.items())
    except InvalidDataError:
        raise
    except Exception as error:  # BadZipFile, zlib.error, EOFError, struct.error: a damaged archive
        raise InvalidDataError(f"{path.name!r} is not a readable npz (zip) archive.") from error
    if total > MAX_NPZ_BYTES:
        raise InvalidDataError(
            f"{path.name!r} holds {total / 1024**3:.1f} GB of arrays; the limit is {MAX_NPZ_BYTES / 1024**3:.0f} GB."
        )
    if "x" in members:
        with zipfile.ZipFile(path) as archive, archive.open(members["x"]) as member:
            shape, _ = read_npy_header(member)
        check_data_values(int(np.prod(shape, dtype=object)), path.name)
    return members, names


def check_data_values(values: int, source: str) -> None:
    """Refuse a data set of more pixel values than ``MAX_DATA_VALUES`` (checked before loading).

    >>> check_data_values(10_000 * 28 * 28, "mnist.npz")
    """
    if values > limits.MAX_DATA_VALUES:
        raise InvalidDataError(
            f"{source!r} holds {values:,} pixel values; the scanner loads at most {limits.MAX_DATA_VALUES:,} "
            "(NC_MAX_DATA_VALUES): keep fewer samples (a few hundred per class are plenty)."
        )


def _npz_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The members numpy will read for our keys, with numpy's precedence (``x`` before ``x.npy``)."""
    names = set(archive.namelist())
    found = {key: name for key in ("x", "y", "class_names") for name in (key + ".npy", key) if name in names}
    return {key: archive.getinfo(name) for key, name in found.items()}


def read_npy_header(member) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an open ``.npy`` stream's header, without reading the array.

    Raises ``ValueError`` when it is no npy header.
    """
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    return tuple(shape), dtype


def _check_npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, source: str) -> int:
    """Declared size of one array in bytes; refuses pickled objects and lying headers."""
    with archive.open(info) as member:
        try:
            shape, dtype = read_npy_header(member)
        except ValueError:
            raise InvalidDataError(f"{source!r}: the entry {key!r} is not a numpy array.") from None
    if dtype.hasobject:
        raise InvalidDataError(
            f"{source!r}: {key!r} holds Python objects, which are not loaded for safety; store numbers "
            "(and class names as a string array)."
        )
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > info.file_size:
        raise InvalidDataError(f"{source!r}: the array {key!r} is truncated or damaged.")
    return nbytes


def _images_array(x: np.ndarray) -> np.ndarray:
    """x as numbers shaped (N,H,W,C) with C in 1..4; a grey (N,H,W) gains a channel axis."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "biuf":
        raise InvalidDataError(f"x holds {_kind_text(x)}; images need numbers (integers or floats).")
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4:
        raise InvalidDataError(
            f"x has shape {x.shape}; images need shape (N, height, width, channels) or (N, height, width)."
        )
    if len(x) == 0:
        raise InvalidDataError("x holds no images (N = 0).")
    if x.shape[1] == 0 or x.shape[2] == 0 or not 1 <= x.shape[3] <= 4:
        hint = " It looks channels-first: transpose it to (N, H, W, C)." if 1 <= x.shape[1] <= 4 else ""
        raise InvalidDataError(f"x has shape {x.shape}; images need 1 to 4 channels last.{hint}")
    return x.astype(np.uint8) if x.dtype.kind == "b" else x


def _kind_text(array: object) -> str:
    """Words for a non-numeric array's contents, e.g. ``text`` for a string array."""
    kinds = {"U": "text", "S": "bytes", "c": "complex numbers", "M": "dates", "m": "time spans", "V": "records"}
    dtype = getattr(array, "dtype", None)
    return kinds.get(getattr(dtype, "kind", ""), f"{type(array).__name__} values")


def _labels_array(y: np.ndarray, n: int) -> np.ndarray:
    """Integer class ids (N,) from ids or one-hot rows."""
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "biuf":
        raise InvalidDataError(f"y holds {_kind_text(y)}; labels need integer class ids.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[1] >= 2:
        if not np.all(np.isfinite(y)):
            raise InvalidDataError("y (one-hot labels) holds NaN or infinite values.")
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise InvalidDataError(f"y has shape {y.shape}; labels need shape (N,) or one-hot (N, classes).")
    if len(y) != n:
        raise InvalidDataError(f"x holds {n} images but y holds {len(y)} labels; they need the same length.")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise InvalidDataError("y holds non-integer labels; labels need whole-number class ids.")
    if y.min() < 0:
        raise InvalidDataError(f"y holds negative labels (e.g. {y.min():g}); class ids start at 0.")
    if float(y.max()) > MAX_CLASS_ID:
        raise InvalidDataError(f"y holds the label {y.max():g}; class ids above {MAX_CLASS_ID} are not supported.")
    return y.astype(np.int64)


def _class_names(names: np.ndarray | None, y: np.ndarray) -> list[str] | None:
    if names is None:
        return None
    if not isinstance(names, np.ndarray) or names.ndim != 1 or names.dtype.kind not in "US":
        raise InvalidDataError("class_names must be a 1-D array of strings, one per class.")
    if len(names) <= int(y.max()):
        raise InvalidDataError(f"class_names holds {len(names)} names but the labels go up to {int(y.max())}.")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names.tolist()]


def _to_unit(stored: np.ndarray, pixel_range: PixelRange) -> np.ndarray:
    """Model inputs -> unit pixels, clipped to [0, 1], float32."""
    unit = pixel_range.to_unit(stored)
    if not np.all(np.isfinite(unit)):
        raise InvalidDataError(f"The data cannot be read in the pixel range {pixel_range.label}.")
    return np.clip(unit, 0.0, 1.0).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- image trees


@dataclass(frozen=True)
class _File:
    parts: tuple[str, ...]  # path components below the root
    read: Callable[[], bytes]


def load_image_folder(
    path: str | Path, image_size: tuple[int, int], channels: int, max_samples: int | None = None
) -> Dataset:
    """Images in one sub-folder per class (the ``image_dataset_from_directory`` layout).

    Class ids follow sorted folder names; empty class folders keep their id. Images are
    resized to ``image_size`` (height, width); non-image files are skipped.

    >>> load_image_folder("pets/", (64, 64), 3).class_names
    ['cat', 'dog']
    """
    root = Path(path)
    if not root.is_dir():
        raise InvalidDataError(f"The folder {str(root)!r} does not exist.")
    files, dirs = _folder_tree(root)
    return _tree_dataset(files, dirs, root.name, image_size, channels, max_samples)


def _folder_tree(root: Path) -> tuple[list[_File], list[tuple[str, ...]]]:
    files: list[_File] = []
    dirs: list[tuple[str, ...]] = []
    for here, subdirs, names in os.walk(root):
        rel = Path(here).relative_to(root).parts
        dirs.extend(rel + (d,) for d in subdirs)
        for name in names:
            full = Path(here) / name
            if _is_regular(full):  # no symlinks, FIFOs (which would block the read), devices, sockets
                files.append(_File(rel + (name,), lambda full=full: _read_file(full)))
            if len(files) > MAX_FILES:
                raise InvalidDataError(f"{root.name!r} holds more than {MAX_FILES} files; that is too many.")
    return files, dirs


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _read_file(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidDataError(
                f"{path.name!r} is larger than {MAX_FILE_BYTES // 1024**2} MB, too big for an image."
            )
        with open(path, "rb") as file:
            return file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise InvalidDataError(f"Cannot read {path.name!r}: {error.strerror or error}.") from error


def load_image_zip(
    path: str | Path, image_size: tuple[int, int], channels: int, max_samples: int | None = None
) -> Dataset:
    """The class-folder layout inside a zip, read in memory (nothing is extracted to disk).

    A single wrapper folder is ignored, as are ``__MACOSX`` and hidden files. Unsafe member
    names and archives that unpack too large (zip bombs) are refused.

    >>> load_image_zip("pets.zip", (64, 64), 3).source
    'pets.zip'
    """
    path = _existing(path, "zip file")
    try:
        archive = zipfile.ZipFile(path)
    except Exception as error:  # BadZipFile, OSError, EOFError, ...: not a zip we can read
        raise InvalidDataError(f"{path.name!r} is not a readable zip file.") from error
    with archive:
        files, dirs = _zip_tree(archive, path.name)
        return _tree_dataset(files, dirs, path.name, image_size, channels, max_samples)


def _zip_tree(archive: zipfile.ZipFile, source: str) -> tuple[list[_File], list[tuple[str, ...]]]:
    infos = archive.infolist()
    if len(infos) > MAX_FILES:
        raise InvalidDataError(f"{source!r} holds {len(infos)} files; the limit is {MAX_FILES}.")
    if sum(info.file_size for info in infos) > MAX_TOTAL_BYTES:
        raise InvalidDataError(f"{source!r} unpacks to more than {MAX_TOTAL_BYTES // 1024**2} MB; that is too big.")
    files: list[_File] = []
    dirs: list[tuple[str, ...]] = []
    for info in infos:
        parts = _safe_parts(info.filename, source)
        _check_member_size(info, source)
        if not parts:
            continue
        if info.is_dir():
            dirs.append(parts)
        else:
            files.append(_File(parts, lambda info=info: _read_member(archive, info, source)))
    return files, dirs


def _safe_parts(name: str, source: str) -> tuple[str, ...]:
    """Path components of a member name; absolute names and ``..`` are refused (zip slip)."""
    parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts or "\x00" in name:
        raise InvalidDataError(f"{source!r} holds an unsafe file name {name[:80]!r} (absolute or with '..').")
    return tuple(parts)


def _check_member_size(info: zipfile.ZipInfo, source: str) -> None:
    if info.file_size > MAX_FILE_BYTES:
        raise InvalidDataError(
            f"{source!r}: {info.filename[:80]!r} unpacks to {info.file_size // 1024**2} MB; "
            f"files above {MAX_FILE_BYTES // 1024**2} MB are refused."
        )
    _check_compression_ratio(info, source)


def _check_compression_ratio(info: zipfile.ZipInfo, source: str) -> None:
    ratio = zip_bomb_ratio(info)
    if ratio is not None:
        raise InvalidDataError(
            f"{source!r}: {info.filename[:80]!r} is compressed {ratio:.0f} to 1, which looks like a zip bomb."
        )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> bytes:
    """One member's bytes; reads at most the limit even if the header lies about its size."""
    try:
        with archive.open(info) as member:
            data = member.read(MAX_FILE_BYTES + 1)
    except Exception as error:  # bad CRC, encrypted, unknown compression, corrupt stream
        raise InvalidDataError(f"{source!r} is damaged: cannot read {info.filename[:80]!r}.") from error
    if len(data) > MAX_FILE_BYTES:
        raise InvalidDataError(f"{source!r}: {info.filename[:80]!r} is larger than it claims; refused.")
    return data


def _tree_dataset(
    files: list[_File],
    dirs: list[tuple[str, ...]],
    source: str,
    image_size: tuple[int, int],
    channels: int,
    max_samples: int | None,
) -> Dataset:
    """Class folders -> Dataset: pick files per class, decode them, check two classes remain."""
    size = _check_image_args(image_size, channels)
    files = [f for f in files if not _hidden(f.parts)]
    dirs = [d for d in dirs if not _hidden(d)]
    files, dirs = _strip_wrapper(files, dirs)
    class_names = sorted({f.parts[0] for f in files if len(f.parts) > 1} | {d[0] for d in dirs})
    class_ids = {name: i for i, name in enumerate(class_names)}
    images = [f for f in files if len(f.parts) > 1 and f.parts[-1].lower().endswith(IMAGE_SUFFIXES)]
    labels = np.array([class_ids[f.parts[0]] for f in images], dtype=np.int64)
    skipped = len(files) - len(images)
    _require_two_classes(class_names, labels, source, "image files")
    if max_samples is not None and len(images) > _check_max_samples(max_samples):
        keep = stratified_indices(labels, max_samples)
        images, labels = [images[i] for i in keep], labels[keep]
    check_data_values(len(images) * size[0] * size[1] * channels, source)
    budget = _PixelBudget(source)
    decoded = [_decode_image(f.read(), "/".join(f.parts), size, channels, budget) for f in images]
    ok = np.array([d is not None for d in decoded], dtype=bool)
    _require_two_classes(class_names, labels[ok], source, "readable images")
    x = np.stack([d for d in decoded if d is not None])
    skipped += int((~ok).sum())
    return Dataset(x, labels[ok], class_names, source, PixelRange.parse("0-255"), False, skipped=skipped)


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _strip_wrapper(files: list[_File], dirs: list[tuple[str, ...]]) -> tuple[list[_File], list[tuple[str, ...]]]:
    """Drop a single top-level folder that only wraps the class folders (``data/cat/1.png``)."""
    tops = {f.parts[0] for f in files} | {d[0] for d in dirs}
    nested = any(len(f.parts) > 2 for f in files) or any(len(d) > 1 for d in dirs)
    if len(tops) != 1 or not nested or any(len(f.parts) == 1 for f in files):
        return files, dirs
    return [_File(f.parts[1:], f.read) for f in files], [d[1:] for d in dirs if len(d) > 1]


def _require_two_classes(class_names: list[str], labels: np.ndarray, source: str, what: str) -> None:
    """An empty class folder is fine as long as two classes still have images."""
    present = sorted({class_names[i] for i in labels.tolist()})
    if len(present) >= 2:
        return
    if len(class_names) < 2:
        found = f"found {len(class_names)} ({', '.join(class_names)})" if class_names else "found none"
        raise InvalidDataError(f"{source!r} needs at least 2 classes, one sub-folder of images per class; {found}.")
    if not present:
        raise InvalidDataError(f"{source!r} holds no {what} (PNG, JPEG, BMP, GIF, WebP, TIFF) in its class folders.")
    raise InvalidDataError(
        f"{source!r} has {what} for only one class ({present[0]!r}); the scanner needs at least 2 classes."
    )


def _check_image_args(image_size: tuple[int, int], channels: int) -> tuple[int, int]:
    if len(tuple(image_size)) != 2 or not all(1 <= int(s) <= MAX_IMAGE_SIDE for s in image_size):
        raise InvalidParameterError(f"The image size must be two sides from 1 to {MAX_IMAGE_SIDE}, not {image_size}.")
    if channels not in PIL_MODES:
        raise InvalidParameterError(f"Images need 1, 2, 3 or 4 channels, not {channels}.")
    return int(image_size[0]), int(image_size[1])


@dataclass
class _PixelBudget:
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


def _decode_image(
    data: bytes, name: str, size: tuple[int, int], channels: int, budget: _PixelBudget | None = None
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

    >>> load_images([("cat.png", png_bytes)], (32, 32), 3, labels=[3]).y
    array([3])
    """
    size = _check_image_args(image_size, channels)
    if not files:
        raise InvalidDataError("No images were uploaded.")
    if len(files) > MAX_FILES:
        raise InvalidDataError(f"{len(files)} images were uploaded; the limit is {MAX_FILES}.")
    _check_unique_names([name for name, _ in files])
    y = _upload_labels(labels, len(files))
    check_data_values(len(files) * size[0] * size[1] * channels, f"{len(files)} uploaded images")
    budget = _PixelBudget(f"{len(files)} uploaded images")
    pixels = []
    for name, data in files:
        if len(data) > MAX_FILE_BYTES:
            raise InvalidDataError(f"{name[:80]!r} is larger than {MAX_FILE_BYTES // 1024**2} MB.")
        image = _decode_image(data, name, size, channels, budget)
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


# --------------------------------------------------------------------------- dispatch and checks


def load_data(
    path: str | Path,
    input_shape: tuple[int, int, int],
    pixel_range: PixelRange | None = None,
    max_samples: int | None = None,
    num_classes: int | None = None,
) -> Dataset:
    """Load an npz, a zip of class folders or a folder of class folders, and check it fits the model.

    Images are resized to the model's input; ``pixel_range`` (if given) is the model's range.

    >>> load_data("pets.zip", (64, 64, 3), PixelRange.parse("-1-1")).x.shape[1:]
    (64, 64, 3)
    """
    path = Path(path)
    height, width, channels = input_shape
    if path.is_dir():
        ds = load_image_folder(path, (height, width), channels, max_samples)
    elif path.suffix.lower() == ".npz":
        ds = load_npz(path, pixel_range, max_samples)
    elif path.suffix.lower() == ".zip":
        ds = load_image_zip(path, (height, width), channels, max_samples)
    elif not path.exists():
        raise InvalidDataError(f"The data {str(path)!r} does not exist.")
    else:
        raise InvalidDataError(
            f"{path.name!r} is not data the scanner reads: use an .npz file, a .zip of class folders, or a folder."
        )
    if pixel_range is not None and not ds.range_from_data:
        ds = ds.with_pixel_range(pixel_range)
    check_fits(ds, input_shape, num_classes)
    return ds


def check_fits(ds: Dataset, input_shape: tuple[int, int, int], num_classes: int | None = None) -> None:
    """Refuse data whose image shape or labels the model cannot take.

    >>> check_fits(mnist_ds, (32, 32, 3))
    Traceback (most recent call last):
    InvalidDataError: The data holds 28x28x1 images; the model takes 32x32x3.
    """
    shape = tuple(int(s) for s in ds.x.shape[1:])
    if shape != tuple(input_shape):
        raise InvalidDataError(f"The data holds {_dims(shape)} images; the model takes {_dims(input_shape)}.")
    known = ds.y[ds.y >= 0]
    if num_classes is not None and len(known) and int(known.max()) >= num_classes:
        raise InvalidDataError(
            f"The data has the label {int(known.max())} but the model knows {num_classes} classes "
            f"(0 to {num_classes - 1})."
        )


def _dims(shape: Iterable[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def pick_pixel_range(
    predict_fn: Callable[[np.ndarray], np.ndarray],
    ds: Dataset,
    candidates: Sequence[str | PixelRange] = ("0-1", "0-255", "-1-1"),
) -> tuple[PixelRange, dict[str, float]]:
    """Guess the range a model expects: the candidate under which it classifies the images best.

    Scores each candidate by accuracy on at most ``PICK_RANGE_SAMPLES`` labelled samples; images
    without labels are scored by the model's mean confidence instead (a model fed the wrong
    range is rarely sure of anything). Ties go to the earlier candidate.

    >>> best, scores = pick_pixel_range(lambda v: predict(clf, v), ds); best.name
    '0-255'
    """
    if not candidates:
        raise InvalidParameterError("Give at least one pixel range to try.")
    if len(ds) == 0:
        raise InvalidDataError("Guessing the pixel range needs at least one image.")
    labelled = np.flatnonzero(ds.y >= 0)
    if len(labelled):
        pick = labelled[stratified_indices(ds.y[labelled], PICK_RANGE_SAMPLES)]
    else:
        pick = np.arange(min(len(ds), PICK_RANGE_SAMPLES))
    x, y = ds.x[pick], ds.y[pick]
    best, scores = None, {}
    for candidate in candidates:
        candidate_range = PixelRange.parse(candidate) if isinstance(candidate, str) else candidate
        probs = np.asarray(predict_fn(candidate_range.from_unit(x)))
        hits = probs.argmax(axis=1) == y if len(labelled) else probs.max(axis=1)
        scores[candidate_range.label] = float(np.mean(hits))
        if best is None or scores[candidate_range.label] > scores[best.label]:
            best = candidate_range
    return best, scores


def stratified_indices(y: np.ndarray, n: int, seed: int = SEED) -> np.ndarray:
    """Sorted indices of ``n`` samples, each class keeping its share (fixed seed, so repeatable).

    Every class first gets one sample (when ``n`` allows), so small classes survive a cut.

    >>> len(stratified_indices(np.array([0, 0, 0, 1]), 2))
    2
    """
    y = np.asarray(y)
    if n >= len(y):
        return np.arange(len(y))
    order = np.random.default_rng(seed).permutation(len(y))
    _, inverse, counts = np.unique(y[order], return_inverse=True, return_counts=True)
    by_class = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(y), dtype=np.int64)
    rank[by_class] = np.arange(len(y)) - starts[inverse[by_class]]
    key = np.where(rank == 0, -1.0, (rank + 0.5) / counts[inverse])
    return np.sort(order[np.argsort(key, kind="stable")[:n]])


def _check_max_samples(max_samples: int) -> int:
    if int(max_samples) < 1:
        raise InvalidParameterError(f"The sample limit must be at least 1, not {max_samples}.")
    return int(max_samples)


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise InvalidDataError(f"The {what} {str(path)!r} does not exist.")
    if not path.is_file():  # a FIFO would block the read forever; devices and folders are no files
        raise InvalidDataError(f"The {what} {str(path)!r} is not a regular file.")
    return path
