"""Run bundles: the zip a run is exported as, and reading one back from untrusted hands.

A bundle carries a run to another machine: ``run.json`` (the run's record), ``report.json`` and
``summary.json``, ``repair.json`` for a repair run, the run's ``classes/``, ``samples/`` and
``margin.npz`` as stored, and PNGs of every trigger for a person browsing the zip.

A reviewer imports a bundle someone sent; it is opened in memory, every member name is checked
against the few a bundle holds, sizes are bounded, arrays are read without pickle, and JSON is
checked for the fields a run needs. Anything else is refused with a sentence. The store
(:meth:`~nc_core.runs.store.RunStore.export_bundle`, ``import_bundle``) only hands a run's
files over and takes them back.

The shipped scan of the MNIST sample is such a bundle (``make_samples.py`` exports it):

    >>> import json
    >>> from pathlib import Path
    >>> bundle = Path("sample_models/mnist_backdoored_scan.zip").read_bytes()
    >>> record, report_json, class_files, repair_json = read_bundle(bundle)
    >>> record["kind"], record["status"], record["model"], repair_json
    ('scan', 'done', 'mnist_backdoored.keras', None)
    >>> json.loads(report_json)["flagged"], sorted(class_files)[:3]
    ([7], ['classes/0.json', 'classes/0.npz', 'classes/1.json'])
    >>> read_bundle(b"PK, but not a zip")
    Traceback (most recent call last):
    nc_core.errors.InvalidDataError: This is not a run bundle the dashboard can import: it is not a zip file.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from nc_core.detection.report import ScanReport
from nc_core.errors import InvalidDataError
from nc_core.loading import limits
from nc_core.loading.data import read_npy_header

BUNDLE_VERSION = 1
MAX_BUNDLE_BYTES = 256 * 1024**2
MAX_MEMBER_BYTES = 64 * 1024**2
MAX_MEMBERS = 20_000
_CLASS_FILE = re.compile(r"classes/(\d{1,6})\.(npz|json)|samples/(\d{1,6})\.npz|margin\.npz")
_IGNORED = re.compile(r"(summary\.json|images/\d{3,6}_(mask|pattern|fusion)\.png)")
_RUN_FIELDS = ("kind", "status", "model", "data", "settings", "created")
#: Timestamps a run can carry: from the epoch to 2100 (a bundle with ``created: 1e300`` is refused).
_LATEST_TIME = 4_102_444_800.0
_MAX_TEXT = 10_000
_MAX_LIST = 100_000
_MAX_PIXELS = 4096 * 4096


def write_bundle(record: dict, report: ScanReport | None, repair: dict | None, run_dir: Path) -> bytes:
    """A self-contained zip of one run: its ``record`` (a :class:`~nc_core.runs.store.RunRecord` as
    a dict), its report and repair figures, and the files in its folder ``run_dir``."""
    from nc_core.reports.images import trigger_images

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("run.json", json.dumps({"bundle_version": BUNDLE_VERSION, **record}, indent=2))
        if report is not None:
            bundle.writestr("report.json", report.to_json(include_arrays=False))
            bundle.writestr("summary.json", json.dumps(report.summary(), indent=2))
        if repair is not None:
            bundle.writestr("repair.json", json.dumps(repair))
        for folder in ("classes", "samples"):
            for path in sorted((run_dir / folder).glob("*")):
                if not path.name.startswith("."):  # a killed worker's half-written temporary file
                    bundle.write(path, f"{folder}/{path.name}")
        if (run_dir / "margin.npz").exists():
            bundle.write(run_dir / "margin.npz", "margin.npz")
        for result in report.results if report else []:
            for name, image in trigger_images(result.mask, result.pattern, scale=4).items():
                png = io.BytesIO()
                image.save(png, format="PNG")
                bundle.writestr(f"images/{result.target:03d}_{name}.png", png.getvalue())
    return buffer.getvalue()


def _refuse(reason: str) -> InvalidDataError:
    return InvalidDataError(f"This is not a run bundle the dashboard can import: {reason}.")


def read_bundle(data: bytes) -> tuple[dict, str | None, dict[str, bytes], str | None]:
    """The run record, the report JSON (or ``None``), the run's files by path (``classes/3.npz``,
    ``samples/3.npz``, ``margin.npz``) and, for a repair run, its figures JSON (or ``None``) of a
    bundle."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise _refuse(f"it is larger than {MAX_BUNDLE_BYTES // 1024**2} MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _refuse("it is not a zip file") from None
    if len(members) > MAX_MEMBERS:
        raise _refuse("it holds too many files")
    _check_unpacked_sizes(members)
    contents: dict[str, bytes] = {}
    for info in members:
        if info.is_dir() or _IGNORED.fullmatch(info.filename):
            continue
        if info.filename not in ("run.json", "report.json", "repair.json") and not _CLASS_FILE.fullmatch(info.filename):
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
    _check_record(record)
    report = contents.pop("report.json", None)
    if report is not None:
        _check_report(_json(report, "report.json"))
    repair = contents.pop("repair.json", None)
    if repair is not None:
        _check_repair(_json(repair, "repair.json"))
    class_files = dict(contents)  # what is left: classes/, samples/ and margin.npz, by path in the run's folder
    array_budget = limits.MAX_BUNDLE_UNPACKED_BYTES
    for name, content in class_files.items():
        if name.startswith("samples/"):
            array_budget -= _check_samples(content, name, array_budget)
        elif name == "margin.npz":
            array_budget -= _check_margin_images(content, array_budget)
        elif name.endswith(".npz"):
            array_budget -= _check_arrays(content, name, array_budget)
        else:
            _check_class_figures(_json(content, name), name)
    return (
        record,
        report.decode() if report is not None else None,
        class_files,
        repair.decode() if repair is not None else None,
    )


def _check_unpacked_sizes(members: list[zipfile.ZipInfo]) -> None:
    """What the members declare they unpack to, from the headers, before any is inflated."""
    for info in members:
        if limits.zip_bomb_ratio(info) is not None:
            raise _refuse(
                f"{info.filename[:80]} is compressed more than {limits.MAX_COMPRESSION_RATIO} to 1 "
                "(NC_MAX_COMPRESSION_RATIO), which looks like a zip bomb"
            )
    if limits.archive_ratio(members) is not None:
        raise _refuse(
            f"it is compressed more than {limits.MAX_COMPRESSION_RATIO} to 1 as a whole "
            "(NC_MAX_COMPRESSION_RATIO), which looks like a zip bomb"
        )
    if sum(info.file_size for info in members) > limits.MAX_BUNDLE_UNPACKED_BYTES:
        raise _refuse(
            f"it unpacks to more than {limits.megabytes(limits.MAX_BUNDLE_UNPACKED_BYTES)} (NC_MAX_BUNDLE_MB)"
        )


def _check_record(record: dict) -> None:
    """run.json's fields have the types and ranges a run has (see :class:`nc_core.runs.store.RunRecord`)."""
    from nc_core.runs.status import STATUSES

    checks = [
        (record["kind"] in ("scan", "reverse", "repair"), "its kind is not scan, reverse or repair"),
        (record["status"] in STATUSES, "its status is not one a run has"),
        (
            all(
                _text(record.get(k), optional=k != "model" and k != "data")
                for k in ("model", "data", "error", "verdict", "origin")
            ),
            "a name or message is not short text",
        ),
        (isinstance(record["settings"], dict), "its settings are not a mapping"),
        (_time(record["created"]) and _time(record.get("finished"), optional=True), "a time is out of range"),
        (record.get("verdict") in (None, "backdoored", "clean", "inconclusive"), "its verdict is unknown"),
        (_number(record.get("anomaly_index"), optional=True), "its anomaly index is not a number"),
        (_int_list(record.get("flagged", [])), "its flagged classes are not class ids"),
        (isinstance(record.get("progress", {}), dict), "its progress is not a mapping"),
        (
            _names((record["settings"] if isinstance(record["settings"], dict) else {}).get("class_names")),
            "its class names are not short text",
        ),
    ]
    for ok, reason in checks:
        if not ok:
            raise _refuse(f"run.json: {reason}")


def _check_report(payload: object) -> None:
    """report.json fits :class:`~nc_core.detection.report.ScanReport`, field by field."""
    _checked(payload, ScanReport, "report.json")
    try:
        report = ScanReport.from_dict(payload)
        report.summary()
    except (TypeError, KeyError, ValueError, AttributeError, OverflowError):
        raise _refuse("report.json is not a scan report this version reads") from None
    if not _time(report.created):
        raise _refuse("report.json: a time is out of range")


def _check_repair(payload: object) -> None:
    """repair.json fits :class:`~nc_core.repair.core.RepairResult` (and its re-scan summary)."""
    from nc_core.repair.core import RepairResult

    _checked(payload, RepairResult, "repair.json")
    try:
        RepairResult.from_dict(payload).table()
    except (TypeError, KeyError, ValueError, AttributeError):
        raise _refuse("repair.json is not a repair result this version reads") from None


def _checked(payload: object, schema: type, where: str) -> None:
    from nc_core.schema import check_document

    try:
        check_document(payload, schema, where)
    except InvalidDataError as error:
        raise _refuse(str(error).rstrip(".")) from None


def _check_class_figures(payload: object, name: str) -> None:
    from nc_core.detection.report import result_from_dict

    if not isinstance(payload, dict):
        raise _refuse(f"{name} is not a class result")
    try:
        result_from_dict({**payload, "mask": [[0.0]], "pattern": [[[0.0]]]})
    except (TypeError, KeyError, ValueError):
        raise _refuse(f"{name} is not a class result this version reads") from None


def _text(value: object, optional: bool = False) -> bool:
    return (optional and value is None) or (isinstance(value, str) and len(value) <= _MAX_TEXT)


def _number(value: object, optional: bool = False) -> bool:
    if optional and value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _time(value: object, optional: bool = False) -> bool:
    return (optional and value is None) or (_number(value) and 0 <= value <= _LATEST_TIME)


def _int_list(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= _MAX_LIST
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**7 for v in value)
    )


def _names(value: object) -> bool:
    return value is None or (
        isinstance(value, list)
        and len(value) <= _MAX_LIST
        and all(isinstance(v, str) and len(v) <= 1000 for v in value)
    )


def _json(content: bytes | None, name: str):
    if content is None:
        raise _refuse(f"{name} is missing")
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refuse(f"{name} is not valid JSON") from None
    except RecursionError:
        raise _refuse(f"{name} is nested too deeply") from None


def _check_shapes(archive: zipfile.ZipFile, name: str) -> int:
    """Mask ``(H, W)`` or ``(H, W, C)`` and pattern ``(H, W, C)`` of one image size, read from the
    npy headers before any array is inflated (a small file cannot expand into gigabytes); returns
    the bytes they declare."""
    shapes, nbytes = {}, 0
    for key in ("mask", "pattern"):
        info = archive.getinfo(f"{key}.npy")
        if limits.zip_bomb_ratio(info) is not None:
            raise _refuse(f"{name} holds a {key} compressed like a zip bomb")
        with archive.open(info) as member:
            shape, dtype = read_npy_header(member)
        size = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if size > 4 * 4 * _MAX_PIXELS:
            raise _refuse(f"{name} holds an array too large for a trigger")
        shapes[key], nbytes = tuple(shape), nbytes + size
    mask, pattern = shapes["mask"], shapes["pattern"]
    if len(pattern) != 3 or len(mask) not in (2, 3) or mask[:2] != pattern[:2] or pattern[0] * pattern[1] > _MAX_PIXELS:
        raise _refuse(f"{name} holds a mask and a pattern of different or impossible shapes")
    return nbytes


def _check_arrays(content: bytes, name: str, budget: int) -> int:
    """Check one class's mask and pattern; returns the bytes they unpack to, which must fit in
    ``budget`` (what is left of ``MAX_BUNDLE_UNPACKED_BYTES`` for all class arrays)."""
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
            if set(arrays.files) != {"mask", "pattern"}:
                raise _refuse(f"{name} does not hold a mask and a pattern")
            nbytes = _check_shapes(arrays.zip, name)
            if nbytes > budget:
                raise _refuse(
                    f"its class arrays unpack to more than "
                    f"{limits.megabytes(limits.MAX_BUNDLE_UNPACKED_BYTES)} (NC_MAX_BUNDLE_MB)"
                )
            mask, pattern = arrays["mask"], arrays["pattern"]
            for key, array in (("mask", mask), ("pattern", pattern)):
                if array.dtype.kind != "f" or not np.isfinite(array).all():
                    raise _refuse(f"{name} holds a {key} that is not finite numbers")
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError):
        raise _refuse(f"{name} is not a readable array file") from None
    return nbytes


def _declared_bytes(content: bytes, name: str, budget: int) -> int:
    """The bytes an npz's arrays declare in their headers, read before any is inflated; refused
    when they exceed ``budget`` or look like a zip bomb."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        total = 0
        for info in archive.infolist():
            if limits.zip_bomb_ratio(info) is not None:
                raise _refuse(f"{name} holds an array compressed like a zip bomb")
            with archive.open(info) as member:
                shape, dtype = read_npy_header(member)
            total += int(np.prod(shape, dtype=object)) * dtype.itemsize
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError):
        raise _refuse(f"{name} is not a readable array file") from None
    if total > budget:
        raise _refuse(
            f"its arrays unpack to more than {limits.megabytes(limits.MAX_BUNDLE_UNPACKED_BYTES)} (NC_MAX_BUNDLE_MB)"
        )
    return total


def _check_samples(content: bytes, name: str, budget: int) -> int:
    """One class's triggered samples: 8-bit thumbnails, class indices and probabilities."""
    from nc_core.detection.samples import TriggeredSamples

    nbytes = _declared_bytes(content, name, budget)
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
            TriggeredSamples.from_arrays(int(name.split("/")[1].split(".")[0]), arrays)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as error:
        raise _refuse(f"{name} is not a class's triggered samples ({error})") from None
    return nbytes


def _check_margin_images(content: bytes, budget: int) -> int:
    """The inputs that reach each class's largest margin: finite floats ``(classes, H, W, C)``."""
    nbytes = _declared_bytes(content, "margin.npz", budget)
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
            images = arrays["images"]
            ok = (
                set(arrays.files) == {"images"}
                and images.dtype.kind == "f"
                and images.ndim == 4
                and images.shape[1] * images.shape[2] <= _MAX_PIXELS
                and bool(np.isfinite(images).all())
            )
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError):
        ok = False
    if not ok:
        raise _refuse("margin.npz does not hold the max-margin inputs")
    return nbytes
