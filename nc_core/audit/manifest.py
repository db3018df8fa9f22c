"""What an audit scans: a manifest of models with their data, and what is known about each.

A manifest is a CSV (``model,data[,label][,targets]``, header required) or a JSON-lines file
(``{"model": ..., "data": ..., "label": "backdoored", "targets": [3]}``), or a folder of models
(``.keras``/``.h5``) with exactly one data file (``.npz`` or ``.zip``) that they all share. Paths
are relative to the manifest's folder. ``label`` is ``clean`` or ``backdoored`` (or empty when
unknown, or ``failed``/``unknown``: scanned but not counted); ``targets`` lists the backdoor's target classes (``3`` or ``3;7``).

    >>> entries = read_manifest("zoo/manifest.csv"); entries[0].label
    'backdoored'
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from nc_core.errors import InvalidDataError
from nc_core.loading.models import MODEL_SUFFIXES

LABELS = ("clean", "backdoored")
#: Labels that say "not known": scanned, but left out of the labelled figures (the evaluation zoo
#: marks ``failed`` the models whose backdoor did not take).
UNLABELLED = ("", "unknown", "failed", "-", "none")
DATA_SUFFIXES = (".npz", ".zip")
MAX_MANIFEST_BYTES = 16 * 1024**2
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class AuditEntry:
    """One model to scan, its data, and (when known) whether it is backdoored and where to."""

    model: Path
    data: Path
    label: str | None = None
    targets: tuple[int, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.model.name


def read_manifest(path: str | Path) -> list[AuditEntry]:
    """The entries of a CSV or JSON-lines manifest, or of a folder of models sharing one data file."""
    path = Path(path)
    if path.is_dir():
        return _folder_entries(path)
    if not path.is_file():
        raise InvalidDataError(f"The manifest {str(path)!r} does not exist.")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise InvalidDataError(f"The manifest {path.name!r} is larger than {MAX_MANIFEST_BYTES // 1024**2} MB.")
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = _jsonl_rows(text, path.name) if path.suffix.lower() in (".jsonl", ".json") else _csv_rows(text, path.name)
    if not rows:
        raise InvalidDataError(f"The manifest {path.name!r} lists no models.")
    if len(rows) > MAX_ENTRIES:
        raise InvalidDataError(f"The manifest {path.name!r} lists {len(rows):,} models; the limit is {MAX_ENTRIES:,}.")
    return [_entry(row, path.parent, f"{path.name}, entry {n}") for n, row in enumerate(rows, 1)]


def _csv_rows(text: str, name: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "model" not in columns or "data" not in columns:
        raise InvalidDataError(f"The manifest {name!r} needs a header with the columns model and data "
                               "(and optionally label and targets).")
    return [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader
            if any((v or "").strip() for v in row.values() if isinstance(v, str))]


def _jsonl_rows(text: str, name: str) -> list[dict]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise InvalidDataError(f"{name!r}, line {number}: not a JSON object.") from None
        if not isinstance(row, dict):
            raise InvalidDataError(f"{name!r}, line {number}: not a JSON object.")
        rows.append(row)
    return rows


def _entry(row: dict, root: Path, where: str) -> AuditEntry:
    model, data = str(row.get("model") or "").strip(), str(row.get("data") or "").strip()
    if not model or not data:
        raise InvalidDataError(f"{where}: it needs a model and a data file.")
    label = str(row.get("label") or "").strip().lower()
    if label not in LABELS + UNLABELLED:
        raise InvalidDataError(f"{where}: the label must be clean or backdoored (or empty), not {label[:40]!r}.")
    label = label if label in LABELS else None
    return AuditEntry(_path(model, root), _path(data, root), label, _targets(row.get("targets"), where))


def _path(value: str, root: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (root / path)


def _targets(value: object, where: str) -> tuple[int, ...]:
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else str(value).replace(";", " ").replace(",", " ").split()
    try:
        targets = tuple(sorted({int(item) for item in items}))
    except (TypeError, ValueError):
        raise InvalidDataError(f"{where}: targets must be class ids, like 3 or 3;7.") from None
    if any(t < 0 for t in targets):
        raise InvalidDataError(f"{where}: targets must be class ids of 0 or more.")
    return targets


def _folder_entries(folder: Path) -> list[AuditEntry]:
    models = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    data = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    if not models:
        raise InvalidDataError(f"The folder {folder.name!r} holds no models (.keras or .h5).")
    if len(data) != 1:
        raise InvalidDataError(f"The folder {folder.name!r} needs exactly one data file (.npz or .zip) shared by its "
                               f"models; it holds {len(data)}. Use a manifest to give each model its own.")
    return [AuditEntry(model, data[0]) for model in models]
