"""Files of an untrusted zip or folder, listed and read within limits, never extracted.

A data zip or folder comes from a stranger: member names may climb out of the archive (zip slip),
a member may declare gigabytes (a zip bomb) or lie about its size, a folder may hold FIFOs that
block a read forever. Everything here refuses those with an :class:`InvalidDataError` before
reading, and hands the class-folder reader (:mod:`.class_folders`) a list of
:class:`TreeFile` s whose bytes are read only when wanted. The limits are module constants, so
deployments and tests can tune them in one place.

    >>> safe_parts("pets/cat/1.png", "pets.zip")
    ('pets', 'cat', '1.png')
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nc_core.errors import InvalidDataError
from nc_core.loading.limits import zip_bomb_ratio

# Limits on untrusted archives and images (module constants so deployments and tests can tune); the
# npz and image readers read them here too. Also from nc_core.loading.limits (one place, raisable
# from the environment): the compression-ratio rule (zip_bomb_ratio), MAX_IMAGE_PIXELS per image
# header, MAX_DECODED_PIXELS and MAX_DATA_VALUES per data set.
MAX_FILES = 50_000  # members of a zip / files under a folder
MAX_TOTAL_BYTES = 512 * 1024**2  # uncompressed size of a whole zip
MAX_FILE_BYTES = 64 * 1024**2  # one image file


@dataclass(frozen=True)
class TreeFile:
    """One file of a zip or folder: where it sits, and how to read it once it is wanted."""

    parts: tuple[str, ...]  # path components below the root
    read: Callable[[], bytes]


def folder_tree(root: Path) -> tuple[list[TreeFile], list[tuple[str, ...]]]:
    """The regular files and the folders under ``root``; links, FIFOs and devices are left out."""
    files: list[TreeFile] = []
    dirs: list[tuple[str, ...]] = []
    for here, subdirs, names in os.walk(root):
        rel = Path(here).relative_to(root).parts
        dirs.extend(rel + (d,) for d in subdirs)
        for name in names:
            full = Path(here) / name
            if _is_regular(full):  # no symlinks, FIFOs (which would block the read), devices, sockets
                files.append(TreeFile(rel + (name,), lambda full=full: _read_file(full)))
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


def zip_tree(archive: zipfile.ZipFile, source: str) -> tuple[list[TreeFile], list[tuple[str, ...]]]:
    """The files and folders of a zip, after every member's name, size and ratio passed."""
    infos = archive.infolist()
    if len(infos) > MAX_FILES:
        raise InvalidDataError(f"{source!r} holds {len(infos)} files; the limit is {MAX_FILES}.")
    if sum(info.file_size for info in infos) > MAX_TOTAL_BYTES:
        raise InvalidDataError(f"{source!r} unpacks to more than {MAX_TOTAL_BYTES // 1024**2} MB; that is too big.")
    files: list[TreeFile] = []
    dirs: list[tuple[str, ...]] = []
    for info in infos:
        parts = safe_parts(info.filename, source)
        _check_member_size(info, source)
        if not parts:
            continue
        if info.is_dir():
            dirs.append(parts)
        else:
            files.append(TreeFile(parts, lambda info=info: _read_member(archive, info, source)))
    return files, dirs


def safe_parts(name: str, source: str) -> tuple[str, ...]:
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
    check_compression_ratio(info, source)


def check_compression_ratio(info: zipfile.ZipInfo, source: str) -> None:
    """Refuse a member compressed like a zip bomb (the rule of :func:`~nc_core.loading.limits.zip_bomb_ratio`)."""
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


def existing_file(path: str | Path, what: str) -> Path:
    """``path`` when it is a regular file; a FIFO would block the read forever."""
    path = Path(path)
    if not path.exists():
        raise InvalidDataError(f"The {what} {str(path)!r} does not exist.")
    if not path.is_file():  # a FIFO would block the read forever; devices and folders are no files
        raise InvalidDataError(f"The {what} {str(path)!r} is not a regular file.")
    return path
