"""Images in one sub-folder per class, in a folder or a zip: the ``image_dataset_from_directory`` layout.

Class ids follow sorted folder names; a single wrapper folder, ``__MACOSX`` and hidden files are
ignored, files that are not images are skipped and counted, and at least two classes must keep
images. The files themselves are listed and read by :mod:`.archives`, decoded by :mod:`.images`.

A folder of pets, read at a model's image size, then the same folder zipped:

    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> pets = Path(tempfile.mkdtemp()) / "pets"
    >>> for name, colour in [("cat", "orange"), ("dog", "brown")]:
    ...     (pets / name).mkdir(parents=True)
    ...     Image.new("RGB", (80, 60), colour).save(pets / name / "1.png")
    >>> load_image_folder(pets, (64, 64), 3).class_names
    ['cat', 'dog']
    >>> load_image_zip(shutil.make_archive(pets, "zip", pets.parent, pets.name), (64, 64), 3).class_names
    ['cat', 'dog']
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nc_core.errors import InvalidDataError
from nc_core.loading.data.archives import TreeFile, existing_file, folder_tree, zip_tree
from nc_core.loading.data.dataset import Dataset, check_data_values, check_max_samples, stratified_indices
from nc_core.loading.data.images import IMAGE_SUFFIXES, PixelBudget, check_image_args, decode_image
from nc_core.loading.pixels import PixelRange


def load_image_folder(
    path: str | Path, image_size: tuple[int, int], channels: int, max_samples: int | None = None
) -> Dataset:
    """Images in one sub-folder per class (the ``image_dataset_from_directory`` layout).

    Class ids follow sorted folder names; empty class folders keep their id. Images are
    resized to ``image_size`` (height, width); non-image files are skipped.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> pets = Path(tempfile.mkdtemp()) / "pets"
    >>> for name, colour in [("cat", "orange"), ("dog", "brown")]:
    ...     (pets / name).mkdir(parents=True)
    ...     for i in range(3):
    ...         Image.new("RGB", (80, 60), colour).save(pets / name / f"{i}.png")
    >>> (pets / "cat" / "notes.txt").write_text("fluffy")  # not an image: skipped, counted
    6
    >>> ds = load_image_folder(pets, (64, 64), 3)
    >>> ds.class_names, ds.x.shape, ds.class_counts(), ds.skipped
    (['cat', 'dog'], (6, 64, 64, 3), {0: 3, 1: 3}, 1)
    """
    root = Path(path)
    if not root.is_dir():
        raise InvalidDataError(f"The folder {str(root)!r} does not exist.")
    files, dirs = folder_tree(root)
    return _tree_dataset(files, dirs, root.name, image_size, channels, max_samples)


def load_image_zip(
    path: str | Path, image_size: tuple[int, int], channels: int, max_samples: int | None = None
) -> Dataset:
    """The class-folder layout inside a zip, read in memory (nothing is extracted to disk).

    A single wrapper folder is ignored, as are ``__MACOSX`` and hidden files. Unsafe member
    names and archives that unpack too large (zip bombs) are refused.

    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> pets = Path(tempfile.mkdtemp()) / "pets"
    >>> for name, colour in [("cat", "orange"), ("dog", "brown")]:
    ...     (pets / name).mkdir(parents=True)
    ...     Image.new("RGB", (80, 60), colour).save(pets / name / "1.png")
    >>> pets_zip = shutil.make_archive(pets, "zip", pets.parent, pets.name)  # pets/ wraps the classes
    >>> ds = load_image_zip(pets_zip, (64, 64), 3)
    >>> ds.source, ds.class_names, ds.pixel_range.label
    ('pets.zip', ['cat', 'dog'], '0-255')
    """
    path = existing_file(path, "zip file")
    try:
        archive = zipfile.ZipFile(path)
    except Exception as error:  # BadZipFile, OSError, EOFError, ...: not a zip we can read
        raise InvalidDataError(f"{path.name!r} is not a readable zip file.") from error
    with archive:
        files, dirs = zip_tree(archive, path.name)
        return _tree_dataset(files, dirs, path.name, image_size, channels, max_samples)


def _tree_dataset(
    files: list[TreeFile],
    dirs: list[tuple[str, ...]],
    source: str,
    image_size: tuple[int, int],
    channels: int,
    max_samples: int | None,
) -> Dataset:
    """Class folders -> Dataset: pick files per class, decode them, check two classes remain."""
    size = check_image_args(image_size, channels)
    files = [f for f in files if not _hidden(f.parts)]
    dirs = [d for d in dirs if not _hidden(d)]
    files, dirs = _strip_wrapper(files, dirs)
    class_names = sorted({f.parts[0] for f in files if len(f.parts) > 1} | {d[0] for d in dirs})
    class_ids = {name: i for i, name in enumerate(class_names)}
    images = [f for f in files if len(f.parts) > 1 and f.parts[-1].lower().endswith(IMAGE_SUFFIXES)]
    labels = np.array([class_ids[f.parts[0]] for f in images], dtype=np.int64)
    skipped = len(files) - len(images)
    _require_two_classes(class_names, labels, source, "image files")
    if max_samples is not None and len(images) > check_max_samples(max_samples):
        keep = stratified_indices(labels, max_samples)
        images, labels = [images[i] for i in keep], labels[keep]
    check_data_values(len(images) * size[0] * size[1] * channels, source)
    budget = PixelBudget(source)
    decoded = [decode_image(f.read(), "/".join(f.parts), size, channels, budget) for f in images]
    ok = np.array([d is not None for d in decoded], dtype=bool)
    _require_two_classes(class_names, labels[ok], source, "readable images")
    x = np.stack([d for d in decoded if d is not None])
    skipped += int((~ok).sum())
    return Dataset(x, labels[ok], class_names, source, PixelRange.parse("0-255"), False, skipped=skipped)


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _strip_wrapper(files: list[TreeFile], dirs: list[tuple[str, ...]]) -> tuple[list[TreeFile], list[tuple[str, ...]]]:
    """Drop a single top-level folder that only wraps the class folders (``data/cat/1.png``)."""
    tops = {f.parts[0] for f in files} | {d[0] for d in dirs}
    nested = any(len(f.parts) > 2 for f in files) or any(len(d) > 1 for d in dirs)
    if len(tops) != 1 or not nested or any(len(f.parts) == 1 for f in files):
        return files, dirs
    return [TreeFile(f.parts[1:], f.read) for f in files], [d[1:] for d in dirs if len(d) > 1]


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
