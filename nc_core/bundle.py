"""Reading run bundles (the zips :meth:`RunStore.export_bundle` writes) from untrusted hands.

A reviewer imports a bundle someone sent; it is opened in memory, every member name is checked
against the few a bundle holds, sizes are bounded, arrays are read without pickle, and JSON is
checked for the fields a run needs. Anything else is refused with a sentence.

    >>> record, report_json, class_files = read_bundle(Path("run.zip").read_bytes())
"""
from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np

from nc_core.errors import InvalidDataError

MAX_BUNDLE_BYTES = 256 * 1024**2
MAX_MEMBER_BYTES = 64 * 1024**2
MAX_MEMBERS = 20_000
_CLASS_FILE = re.compile(r"classes/(\d{1,6})\.(npz|json)")
_IGNORED = re.compile(r"(summary\.json|images/\d{3,6}_(mask|pattern|fusion)\.png)")
_RUN_FIELDS = ("kind", "status", "model", "data", "settings", "created")


def _refuse(reason: str) -> InvalidDataError:
    return InvalidDataError(f"This is not a run bundle the dashboard can import: {reason}.")


def read_bundle(data: bytes) -> tuple[dict, str | None, dict[str, bytes]]:
    """The run record, the report JSON (or ``None``) and the class files of a bundle."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise _refuse(f"it is larger than {MAX_BUNDLE_BYTES // 1024**2} MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _refuse("it is not a zip file") from None
    if len(members) > MAX_MEMBERS:
        raise _refuse("it holds too many files")
    contents: dict[str, bytes] = {}
    for info in members:
        if info.is_dir() or _IGNORED.fullmatch(info.filename):
            continue
        if info.filename not in ("run.json", "report.json") and not _CLASS_FILE.fullmatch(info.filename):
            raise _refuse(f"unexpected file {info.filename!r}")
        if info.file_size > MAX_MEMBER_BYTES:
            raise _refuse(f"{info.filename} is too large")
        try:
            contents[info.filename] = archive.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise _refuse(f"{info.filename} is damaged") from None
    record = _json(contents.pop("run.json", None), "run.json")
    if not isinstance(record, dict) or any(k not in record for k in _RUN_FIELDS):
        raise _refuse("run.json lacks the run's fields")
    report = contents.pop("report.json", None)
    if report is not None:
        _json(report, "report.json")
    class_files = {name.split("/", 1)[1]: content for name, content in contents.items()}
    for name, content in class_files.items():
        if name.endswith(".npz"):
            _check_arrays(content, name)
        else:
            _json(content, name)
    return record, report.decode() if report is not None else None, class_files


def _json(content: bytes | None, name: str):
    if content is None:
        raise _refuse(f"{name} is missing")
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refuse(f"{name} is not valid JSON") from None


def _check_arrays(content: bytes, name: str) -> None:
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
            if set(arrays.files) != {"mask", "pattern"}:
                raise _refuse(f"{name} does not hold a mask and a pattern")
            for key in ("mask", "pattern"):
                if arrays[key].dtype.kind != "f" or not np.isfinite(arrays[key]).all():
                    raise _refuse(f"{name} holds a {key} that is not finite numbers")
    except (ValueError, OSError, zipfile.BadZipFile, EOFError):
        raise _refuse(f"{name} is not a readable array file") from None
