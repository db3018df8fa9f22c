"""What an audit scans: a manifest of models with their data, and what is known about each.

A manifest is a CSV (``model,data[,label][,targets]``, header required) or a JSON-lines file
(``{"model": ..., "data": ..., "label": "backdoored", "targets": [3]}``), or a folder of models
(``.keras``/``.h5``) with exactly one data file (``.npz`` or ``.zip``) that they all share. Paths
are relative to the manifest's folder and must stay inside it (or inside the ``root`` given:
no ``..``, absolute path or symbolic link that leads elsewhere). ``label`` is ``clean`` or ``backdoored`` (or empty when
unknown, or ``failed``/``unknown``: scanned but not counted); ``targets`` lists the backdoor's
target classes (``3`` or ``3;7``).

    >>> print(manifest.read_text())
    model,data,label,targets
    mnist_backdoored.keras,mnist_data.npz,backdoored,7
    mnist_clean.keras,mnist_data.npz,clean,
    >>> entries = read_manifest(manifest); entries[0].name, entries[0].label, entries[0].targets
    ('mnist_backdoored.keras', 'backdoored', (7,))
"""

from __future__ import annotations

import csv
import io
import json
import re
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
#: Class indices a target may name (a label set of a million classes is beyond any model here).
MAX_CLASS_INDEX = 1_000_000


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


def read_manifest(path: str | Path, root: str | Path | None = None) -> list[AuditEntry]:
    """The entries of a CSV or JSON-lines manifest, or of a folder of models sharing one data file.

    Every path must resolve inside ``root`` (default: the manifest's folder); the same model and
    data twice is refused, naming both entries.
    """
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
    entries = [_entry(row, path.parent, f"{path.name}, entry {n}") for n, row in enumerate(rows, 1)]
    _check_inside(entries, Path(root) if root is not None else path.parent, path.name)
    _check_unique(entries, path.name)
    return entries


def _check_inside(entries: list[AuditEntry], root: Path, name: str) -> None:
    """Paths resolve (symbolic links followed) inside ``root``: a manifest from elsewhere cannot
    make the audit read ``/etc`` or another user's files."""
    inside = root.resolve()
    for number, entry in enumerate(entries, 1):
        for path in (entry.model, entry.data):
            if not path.resolve().is_relative_to(inside):
                raise InvalidDataError(
                    f"{name!r}, entry {number}: {str(path)[:120]!r} leads outside the manifest's folder "
                    f"{str(root)[:120]!r}; paths must stay inside it (neural-cleanse audit --root names another)."
                )


def _check_unique(entries: list[AuditEntry], name: str) -> None:
    seen: dict[tuple[Path, Path], int] = {}
    for number, entry in enumerate(entries, 1):
        key = (entry.model.resolve(), entry.data.resolve())
        if key in seen:
            raise InvalidDataError(
                f"{name!r}: entries {seen[key]} and {number} both scan "
                f"{entry.model.name[:80]!r} on {entry.data.name[:80]!r}; list each model once."
            )
        seen[key] = number


def _csv_rows(text: str, name: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    if "model" not in columns or "data" not in columns:
        raise InvalidDataError(
            f"The manifest {name!r} needs a header with the columns model and data (and optionally label and targets)."
        )
    return [
        {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        for row in reader
        if any((v or "").strip() for v in row.values() if isinstance(v, str))
    ]


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
    texts = [str(item).strip() for item in items]
    if any(isinstance(item, (bool, float)) for item in items) or not all(re.fullmatch(r"\d{1,7}", t) for t in texts):
        raise InvalidDataError(f"{where}: targets must be class indices, like 3 or 3;7.")
    targets = tuple(sorted({int(t) for t in texts}))
    if any(t >= MAX_CLASS_INDEX for t in targets):
        raise InvalidDataError(f"{where}: targets must be class indices below {MAX_CLASS_INDEX:,}.")
    return targets


def _folder_entries(folder: Path) -> list[AuditEntry]:
    models = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    data = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    if not models:
        raise InvalidDataError(f"The folder {folder.name!r} holds no models (.keras or .h5).")
    if len(data) != 1:
        raise InvalidDataError(
            f"The folder {folder.name!r} needs exactly one data file (.npz or .zip) shared by its "
            f"models; it holds {len(data)}. Use a manifest to give each model its own."
        )
    return [AuditEntry(model, data[0]) for model in models]
