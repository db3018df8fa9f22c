"""A model file vetted before Keras sees it: its architecture read without Keras, code refused,
weights bounded.

Model files come from strangers, and deserialising a ``Lambda`` layer or a serialised Python
function can run arbitrary code; a small file can also declare gigabytes of weights that Keras
would read whole. So the architecture JSON is read here with ``zipfile`` or ``h5py`` within
limits, refused when it carries code (:func:`refuse_unsafe_config`), and the weights it declares
are compared with what it needs, all before :func:`~nc_core.loading.models.load.load_model` asks
Keras to load anything.

    >>> refuse_unsafe_config({"class_name": "Dense", "config": {"units": 3}})
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from nc_core.errors import ModelLoadError, UnsafeModelError
from nc_core.loading import limits
from nc_core.loading.limits import megabytes
from nc_core.loading.models.keras_errors import load_error, unsafe_message

# The members Keras reads from a .keras archive; anything else counts as an asset (Keras
# extracts the whole archive to a temporary folder when there is more than these).
KERAS_CORE_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5", "model.weights.npz"})
# Class names that carry Python code: Keras 3 Lambda, tf.keras op lambdas, marshalled lambdas.
UNSAFE_CLASS_NAMES = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__"})
# Config keys that only code-carrying layers use (Lambda's ``function``, tf.keras ``function_type``).
UNSAFE_CONFIG_KEYS = frozenset({"function", "function_type", "output_shape_type"})
#: Optimizer state a saved model may carry per weight (Adam keeps two moments; a few keep three).
OPTIMIZER_SLOTS = 3


def vet_model_file(path: Path) -> None:
    """Refuse a ``.keras`` or ``.h5`` file whose architecture carries code or whose weights exceed
    what the architecture needs; read nothing with Keras but the vetted architecture.

    Keras is never asked to deserialise a file we have not vetted ourselves, so a safe-mode gap
    in Keras cannot run an uploaded ``Lambda``.
    """
    config = _read_keras_config(path) if path.suffix.lower() == ".keras" else _read_h5_config(path)
    refuse_unsafe_config(config)
    _check_weight_budget(path, config)


def refuse_unsafe_config(config: Any) -> None:
    """Raise :class:`UnsafeModelError` when a model config holds a Lambda or Python function.

    >>> refuse_unsafe_config({"class_name": "Dense", "config": {"units": 3}})
    """
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            class_name = node.get("class_name")
            if class_name in UNSAFE_CLASS_NAMES:
                raise UnsafeModelError(unsafe_message(f"a {class_name} layer"))
            bad_keys = UNSAFE_CONFIG_KEYS.intersection(node)
            if bad_keys:
                raise UnsafeModelError(unsafe_message(f"a layer with a {sorted(bad_keys)[0]!r} entry"))
            stack.extend(node.values())


def _read_keras_config(path: Path) -> Any:
    """The architecture JSON of a ``.keras`` archive, read without Keras, after checking what
    every member declares it unpacks to (the headers bound what zipfile will ever inflate)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                _check_member_ratio(info, path.name)
            assets = sum(i.file_size for i in infos if i.filename not in KERAS_CORE_MEMBERS)
            if assets > limits.MAX_MODEL_ASSETS_BYTES:
                raise ModelLoadError(
                    f"{path.name!r} holds {megabytes(assets)} of files besides the model (assets), which Keras "
                    f"would unpack to disk; the limit is {megabytes(limits.MAX_MODEL_ASSETS_BYTES)} "
                    "(NC_MAX_MODEL_ASSETS_MB)."
                )
            try:
                info = archive.getinfo("config.json")
            except KeyError:
                raise ModelLoadError(
                    f"{path.name!r} is a zip file but not a Keras model (it has no config.json)."
                ) from None
            _check_config_size(info.file_size, path.name)
            with archive.open(info) as member:
                text = member.read(limits.MAX_CONFIG_BYTES + 1)
    except ModelLoadError:
        raise
    except Exception as error:  # BadZipFile, zlib.error, EOFError, encrypted or odd compression
        raise ModelLoadError(
            f"{path.name!r} is damaged or not a .keras file (a .keras file is a zip archive written by Keras 3)."
        ) from error
    return _parse_config(text, path.name)


def _check_member_ratio(info: zipfile.ZipInfo, name: str) -> None:
    ratio = limits.zip_bomb_ratio(info)
    if ratio is not None:
        raise ModelLoadError(
            f"{name!r}: {info.filename[:80]!r} is compressed {ratio:.0f} to 1, which looks like a zip bomb; "
            f"the limit is {limits.MAX_COMPRESSION_RATIO} to 1 (NC_MAX_COMPRESSION_RATIO)."
        )


def _check_config_size(nbytes: int, name: str) -> None:
    if nbytes > limits.MAX_CONFIG_BYTES:
        raise ModelLoadError(
            f"The architecture in {name!r} is {megabytes(nbytes)} of JSON; the limit is "
            f"{megabytes(limits.MAX_CONFIG_BYTES)} (NC_MAX_MODEL_CONFIG_MB)."
        )


def _read_h5_config(path: Path) -> Any:
    """The ``model_config`` attribute of a legacy ``.h5`` model, read with h5py only."""
    try:
        with h5py.File(path, "r") as file:
            raw = file.attrs.get("model_config")
    except Exception as error:  # OSError for non-HDF5 or truncated files; odd attribute types
        raise ModelLoadError(f"{path.name!r} is damaged or not an HDF5 model file.") from error
    if raw is None:
        raise ModelLoadError(
            f"{path.name!r} holds only weights, no architecture: save the whole model with model.save()."
        )
    _check_config_size(len(raw) if isinstance(raw, (str, bytes)) else np.asarray(raw).nbytes, path.name)
    return _parse_config(raw, path.name)


def _parse_config(raw: Any, name: str) -> Any:
    if isinstance(raw, np.ndarray) and raw.shape == ():
        raw = raw.item()
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        raise ModelLoadError(f"The architecture stored in {name!r} is not readable JSON.") from None


@dataclass(frozen=True)
class _DeclaredWeights:
    """What a model file declares its weights hold, from headers: model and optimizer arrays,
    and the bytes Keras reads into memory to get at them (a ``.keras`` member is read whole)."""

    model: int
    optimizer: int = 0
    read: int = 0

    @property
    def largest(self) -> int:
        return max(self.model + self.optimizer, self.read)


def _check_weight_budget(path: Path, config: Any) -> None:
    """Refuse weights larger than the architecture needs, before Keras reads them.

    Why: an HDF5 dataset of zeros (or a zip member) can declare gigabytes in a small file, and
    Keras reads a weight array whole before it compares shapes. Weights up to
    ``WEIGHTS_CHECK_BYTES`` pass as they are; above that the architecture is built once to learn
    what it needs, and the model's arrays may exceed that by 10 % + 1 MB (HDF5's own overhead),
    its optimizer state by ``OPTIMIZER_SLOTS`` times that, and the file member by 10 % + 1 MB.
    """
    declared = _declared_weight_bytes(path)
    if declared.largest > limits.MAX_WEIGHTS_BYTES:
        raise ModelLoadError(
            f"{path.name!r} declares {megabytes(declared.largest)} of weights; the limit is "
            f"{megabytes(limits.MAX_WEIGHTS_BYTES)} (NC_MAX_WEIGHTS_MB)."
        )
    if declared.largest <= limits.WEIGHTS_CHECK_BYTES:
        return
    allowed = _architecture_weight_bytes(path, config) * 1.1 + limits.MB
    arrays = declared.model + declared.optimizer
    if (
        declared.model > allowed
        or declared.optimizer > OPTIMIZER_SLOTS * allowed
        or declared.read > arrays * 1.1 + limits.MB
    ):
        raise ModelLoadError(
            f"{path.name!r} declares {megabytes(declared.largest)} of weights but its architecture needs "
            f"{megabytes((allowed - limits.MB) / 1.1)}: the weights do not belong to this model (or are padded "
            "to exhaust memory)."
        )


def _declared_weight_bytes(path: Path) -> _DeclaredWeights:
    try:
        if path.suffix.lower() != ".keras":  # h5py reads a legacy .h5 lazily; compile=False skips optimizer_weights
            with h5py.File(path, "r") as file:
                return _DeclaredWeights(_h5_dataset_bytes(file.get("model_weights", file), path.name))
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "model.weights.npz" in names:
                return _DeclaredWeights(_npz_weight_bytes(archive, archive.getinfo("model.weights.npz")))
            if "model.weights.h5" not in names:
                return _DeclaredWeights(0)
            info = archive.getinfo("model.weights.h5")
            with archive.open(info) as member, h5py.File(member, "r") as file:
                optimizer = _h5_dataset_bytes(file["optimizer"], path.name) if "optimizer" in file else 0
                total = _h5_dataset_bytes(file, path.name)
            return _DeclaredWeights(total - optimizer, optimizer, info.file_size)
    except ModelLoadError:
        raise
    except Exception as error:  # a weights file h5py cannot open: Keras would fail the same way
        raise ModelLoadError(f"The weights in {path.name!r} are damaged or not an HDF5 file.") from error


def _npz_weight_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """Declared sizes of the arrays of a ``model.weights.npz`` member (Keras' other weights format)."""
    from nc_core.loading.data.npz import read_npy_header

    total = info.file_size
    with archive.open(info) as member, zipfile.ZipFile(member) as inner:
        for array in inner.infolist():
            with inner.open(array) as stream:
                shape, dtype = read_npy_header(stream)
            total += int(np.prod(shape, dtype=object)) * dtype.itemsize
    return total


def _h5_dataset_bytes(group: h5py.Group, name: str) -> int:
    """Sum of declared array sizes under ``group``, from the HDF5 headers only (nothing is read)."""
    total, count = 0, 0
    stack = [group]
    while stack:
        node = stack.pop()
        for child in node.values():
            count += 1
            if count > limits.MAX_WEIGHT_ARRAYS:
                raise ModelLoadError(
                    f"{name!r} holds more than {limits.MAX_WEIGHT_ARRAYS:,} weight entries (NC_MAX_WEIGHT_ARRAYS)."
                )
            if isinstance(child, h5py.Dataset):
                total += int(np.prod(child.shape, dtype=object)) * child.dtype.itemsize
            elif isinstance(child, h5py.Group):
                stack.append(child)
    return total


def _architecture_weight_bytes(path: Path, config: Any) -> int:
    """Bytes of the weights the architecture creates (built once from the vetted config)."""
    try:
        if path.suffix.lower() == ".keras":
            model = keras.saving.deserialize_keras_object(config, safe_mode=True)
        else:
            from keras.src.legacy.saving import saving_utils

            model = saving_utils.model_from_config(config)
        return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)
    except Exception as error:
        raise load_error(path.name, error) from None
