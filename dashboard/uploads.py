"""Files users upload, written under ``<data dir>/uploads/<sha256>/`` by content hash.

Saving by path (not keeping bytes in memory) lets the cached loaders key on path + mtime and lets
a background worker copy the file into its run. A handful of individually uploaded images is kept
as a folder with ``labels.json``; for a run it becomes an npz of model inputs (see
:func:`run_data_path`), so the worker loads exactly the pixels the page showed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from dashboard.selection import Selection
from nc_core.errors import InvalidDataError, InvalidParameterError
from nc_core.files import atomic_write, npz_bytes
from nc_core.runs.store import default_data_dir

LABELS_FILE = "labels.json"


def uploads_dir() -> Path:
    return default_data_dir() / "uploads"


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _write_once(path: Path, data: bytes) -> Path:
    if not path.exists():
        atomic_write(path, data)
    return path


def safe_name(name: str) -> str:
    """The uploaded file's own name, reduced to safe characters (messages name it; the suffix picks the loader)."""
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:100] or "upload"
    return stem + re.sub(r"[^a-z0-9.]", "", suffix)


def save_upload(name: str, data: bytes) -> Path:
    """Keep one uploaded file as ``uploads/<sha256>/<its name>``."""
    return _write_once(uploads_dir() / _digest(data) / safe_name(name), data)


def save_images(files: list[tuple[str, bytes]], labels: list[int]) -> Path:
    """Keep a handful of images and their class ids as a folder with ``labels.json``."""
    folder = uploads_dir() / _digest(*(data for _, data in files), json.dumps(labels).encode())
    entries = []
    for index, (name, data) in enumerate(files):
        stored = f"{index:04d}_{safe_name(name)}"
        _write_once(folder / stored, data)
        entries.append({"file": stored, "name": name, "label": labels[index]})
    _write_once(folder / LABELS_FILE, json.dumps(entries).encode())
    return folder


def read_images(folder: Path) -> tuple[list[tuple[str, bytes]], list[int]]:
    """The (name, bytes) pairs and class ids that :func:`save_images` kept."""
    entries = json.loads((folder / LABELS_FILE).read_text())
    files = [(entry["name"], (folder / entry["file"]).read_bytes()) for entry in entries]
    return files, [int(entry["label"]) for entry in entries]


def parse_labels(text: str, count: int) -> list[int]:
    """Class ids typed as ``3, 3, 7``: one whole number per image, in upload order."""
    words = [w for w in text.replace(";", ",").replace(" ", ",").split(",") if w]
    if not all(w.isdigit() for w in words):
        raise InvalidParameterError("Type the classes as whole numbers separated by commas, e.g. 3, 3, 7.")
    if len(words) != count:
        raise InvalidParameterError(
            f"{count} images were uploaded with {len(words)} classes; type one class per image."
        )
    return [int(w) for w in words]


def parse_class_names(text: str) -> tuple[str, ...] | None:
    """Class names typed or uploaded one per line (None when there are none)."""
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    return names or None


def upload_selection(
    model_name: str, model_data: bytes, data_name: str, data: bytes, class_names: tuple[str, ...] | None = None
) -> Selection:
    """A selection of an uploaded model and an uploaded npz or zip."""
    return Selection(
        str(save_upload(model_name, model_data)),
        str(save_upload(data_name, data)),
        model_name,
        data_name,
        class_names=class_names,
    )


def images_selection(
    model_name: str,
    model_data: bytes,
    files: list[tuple[str, bytes]],
    labels: list[int],
    class_names: tuple[str, ...] | None = None,
) -> Selection:
    """A selection of an uploaded model and a handful of labelled images."""
    source = files[0][0] if len(files) == 1 else f"{len(files)} uploaded images"
    return Selection(
        str(save_upload(model_name, model_data)),
        str(save_images(files, labels)),
        model_name,
        source,
        class_names=class_names,
        images=True,
    )


def selection_from_uploads(
    model_file, data_file, image_files: list, labels_text: str | None, names_text: str | None
) -> Selection:
    """The selection for what was uploaded (files have ``.name`` and ``.getvalue()``).

    Raises :class:`~nc_core.errors.NCError` when something is missing or the classes are mistyped;
    the files themselves are checked when the selection is loaded.
    """
    if model_file is None:
        raise InvalidDataError("Upload a model file (.keras or .h5).")
    names = parse_class_names(names_text or "")
    if data_file is not None:
        return upload_selection(model_file.name, model_file.getvalue(), data_file.name, data_file.getvalue(), names)
    if image_files:
        labels = parse_labels(labels_text or "", len(image_files))
        files = [(f.name, f.getvalue()) for f in image_files]
        return images_selection(model_file.name, model_file.getvalue(), files, labels, names)
    raise InvalidDataError("Upload the data too: an .npz, a .zip of class folders, or a few images.")


def run_data_path(selection: Selection, data) -> Path:
    """The data file a worker should load: the selection's own, or an npz of the uploaded images.

    ``data`` is the loaded :class:`~nc_core.loading.data.Dataset`; its model inputs (under the settled
    pixel range) are what the worker reads back with that same range.
    """
    if not selection.images:
        return Path(selection.data_path)
    return save_upload("images.npz", npz_bytes(x=data.model_inputs(), y=data.y))
