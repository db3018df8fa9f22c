"""An ``.npz`` of model inputs (``x``), labels (``y``) and optional ``class_names``, read safely.

npz files load without pickle, and every array header is checked before any array is allocated:
object arrays, headers that declare more than the file holds and archives of too many or too
large arrays are refused with a sentence the user understands.

    >>> load_npz("sample_models/mnist_data.npz").pixel_range.name
    '0-255'
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nc_core.errors import InvalidDataError
from nc_core.loading.data import archives
from nc_core.loading.data.archives import check_compression_ratio, existing_file
from nc_core.loading.data.dataset import Dataset, check_data_values, check_max_samples, stratified_indices, to_unit
from nc_core.loading.pixels import PixelRange, guess_pixel_range

MAX_NPZ_BYTES = 1024**3  # declared size of the arrays in an npz
MAX_ABS_VALUE = 1e6  # larger "pixels" are not images
MAX_CLASS_ID = 100_000


def load_npz(path: str | Path, pixel_range: PixelRange | None = None, max_samples: int | None = None) -> Dataset:
    """Read ``x`` (model inputs, (N,H,W,C) or (N,H,W)), ``y`` and optional ``class_names``.

    Never unpickles; array headers are checked before any array is allocated. Without
    ``pixel_range`` the range is guessed from the values.

    >>> ds = load_npz("sample_models/mnist_data.npz", max_samples=100)
    >>> len(ds), ds.class_names[:3], ds.raw_inputs.dtype, ds.pixel_range.label  # guessed from the values
    (100, ['0', '1', '2'], dtype('uint8'), '0-255')
    """
    path = existing_file(path, "data file")
    arrays = _read_npz(path)
    x = _images_array(arrays["x"])
    y = _labels_array(arrays["y"], len(x))
    class_names = _class_names(arrays.get("class_names"), y)
    if max_samples is not None and len(x) > check_max_samples(max_samples):
        idx = stratified_indices(y, max_samples)
        x, y = x[idx], y[idx]
    if not np.all(np.isfinite(x)):
        raise InvalidDataError(f"{path.name!r}: x holds NaN or infinite values; images need finite pixels.")
    peak = max(abs(float(x.min())), abs(float(x.max())))
    if peak > MAX_ABS_VALUE:
        raise InvalidDataError(f"{path.name!r}: x holds values up to {peak:.3g}, too large for pixels.")
    if pixel_range is None:
        pixel_range = guess_pixel_range(x)
    return Dataset(to_unit(x, pixel_range), y, class_names, path.name, pixel_range, True, raw_inputs=x)


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
            if len(infos) > archives.MAX_FILES:
                raise InvalidDataError(f"{path.name!r} holds {len(infos)} arrays; that is too many.")
            members, names = _npz_members(archive), archive.namelist()
            for info in members.values():
                check_compression_ratio(info, path.name)  # the same zip-bomb rule as data zips
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
