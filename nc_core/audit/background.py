"""An audit started from the dashboard: an uploaded zip unpacked safely, the driver detached.

The zip holds the models with their data, and either a ``manifest.csv`` / ``manifest.jsonl``
(labels and targets) or exactly one data file shared by every model. It is unpacked under
``<data>/audit_uploads/<sha256>/`` with the limits of every upload: safe member names only,
known file kinds only, sizes and compression ratios checked from the headers before anything
is written. The driver is ``python -m nc_core audit`` in its own session, so a page rerun, a
refresh or a closed tab does not stop it; the page follows ``<data>/audits/<id>.json``.

An upload of the clean MNIST twin and its data (no manifest: the folder of its models), audited
for two epochs a class while the page follows the audit's record:

    >>> import time
    >>> from nc_core.audit.runner import load_audit
    >>> upload = io.BytesIO()
    >>> with zipfile.ZipFile(upload, "w") as archive:
    ...     archive.write("sample_models/mnist_clean.keras", "mnist_clean.keras")
    ...     archive.write("sample_models/mnist_data.npz", "mnist_data.npz")
    >>> folder = unpack_audit_zip(upload.getvalue(), store, "models.zip")
    >>> audit_id = submit_audit(store, folder, epochs=2, workers=1)
    >>> while load_audit(store, audit_id).status == "running":
    ...     time.sleep(1)
    >>> [(row.model, row.status, row.verdict) for row in load_audit(store, audit_id).rows]
    [('mnist_clean.keras', 'done', 'inconclusive')]
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from nc_core.errors import InvalidDataError
from nc_core.files import atomic_write
from nc_core.loading import limits
from nc_core.loading.data.archives import MAX_FILE_BYTES, MAX_TOTAL_BYTES, safe_parts
from nc_core.runs.store import RunStore

SUFFIXES = (".keras", ".h5", ".hdf5", ".npz", ".zip", ".csv", ".jsonl")
MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
MAX_MEMBERS = 1000


def unpack_audit_zip(data: bytes, store: RunStore, name: str = "audit.zip") -> Path:
    """Unpack an uploaded audit zip (``name``: what the user called it, for messages); return its
    manifest file, or the folder of its models."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InvalidDataError(f"{name[:80]!r} is not a zip file.") from None
    for info in infos:  # an unsafe name anywhere refuses the whole zip, even one we would skip
        safe_parts(info.filename, name[:80])
    kept = [i for i in infos if Path(i.filename).suffix.lower() in SUFFIXES and not _hidden(i.filename)]
    if not kept:
        raise InvalidDataError("The audit zip holds no models (.keras or .h5), data or manifest.")
    if len(infos) > MAX_MEMBERS or sum(i.file_size for i in kept) > MAX_TOTAL_BYTES:
        raise InvalidDataError(
            f"The audit zip holds more than {MAX_MEMBERS} files or unpacks to more than "
            f"{MAX_TOTAL_BYTES // 1024**2} MB."
        )
    if limits.archive_ratio(kept) is not None:
        raise InvalidDataError(
            f"{name[:80]!r} unpacks to {limits.megabytes(sum(i.file_size for i in kept))} from "
            f"{limits.megabytes(len(data))}, more than {limits.MAX_COMPRESSION_RATIO} to 1 "
            "(NC_MAX_COMPRESSION_RATIO): it looks like a zip bomb, not models and data."
        )
    checked = [(info, _checked_parts(info, name)) for info in kept]  # every member, before any is written
    folder = upload_folder(store, data)
    try:
        return _unpack(archive, checked, folder, name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # a refused or broken upload leaves nothing behind
        raise


def upload_folder(store: RunStore, data: bytes) -> Path:
    """Where an upload unpacks: named by its content, so the same zip resumes the same audit."""
    return Path(store.root) / "audit_uploads" / hashlib.sha256(data).hexdigest()[:32]


def _unpack(archive: zipfile.ZipFile, checked: list, folder: Path, name: str) -> Path:
    for info, parts in checked:
        target = folder.joinpath(*parts)
        if not target.exists():
            with archive.open(info) as member:
                content = member.read(info.file_size + 1)
            if len(content) > info.file_size:
                raise InvalidDataError(f"{name[:80]!r}: {info.filename[:80]!r} is larger than it claims.")
            atomic_write(target, content)
    manifests = [p for p in folder.rglob("*") if p.name.lower() in MANIFEST_NAMES]
    if len(manifests) > 1:
        raise InvalidDataError("The audit zip holds more than one manifest.")
    if manifests:
        from nc_core.audit.manifest import read_manifest

        read_manifest(manifests[0], root=folder)  # an uploaded manifest may only name files of its own zip
        return manifests[0]
    models = {p.parent for p in folder.rglob("*") if p.suffix.lower() in (".keras", ".h5", ".hdf5")}
    return models.pop() if len(models) == 1 else folder


def _checked_parts(info: zipfile.ZipInfo, name: str) -> tuple[str, ...]:
    """The member's safe path, after its declared size and compression ratio passed."""
    parts = safe_parts(info.filename, name[:80])
    if info.file_size > 4 * MAX_FILE_BYTES or limits.zip_bomb_ratio(info) is not None:
        raise InvalidDataError(f"{name[:80]!r}: {info.filename[:80]!r} is too large or compressed like a zip bomb.")
    return parts


def _hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in name.replace("\\", "/").split("/"))


def submit_audit(store: RunStore, manifest: Path, epochs: int | None = None, workers: int | None = None) -> str:
    """Start the audit driver detached from the page; returns the audit's id (the page follows it)."""
    from nc_core.audit.manifest import read_manifest
    from nc_core.audit.runner import AuditState, audit_id_for, audit_settings

    upload = _upload_of(store, manifest)
    entries = read_manifest(manifest, root=upload)
    audit_id = audit_id_for(entries, audit_settings(epochs=epochs))
    AuditState(store, audit_id, entries).save("starting")  # the page shows it at once
    command = [sys.executable, "-m", "nc_core", "audit", str(manifest), "--quiet", "--format", "json"]
    command += ["--epochs", str(epochs)] if epochs else []
    command += ["--workers", str(workers)] if workers else []
    command += ["--root", str(upload), "--remove-upload", str(upload)] if upload is not None else []
    folder = Path(store.root) / "audits"
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NC_DATA_DIR": str(store.root)}  # Ray's own authentication stays as Ray sets it
    try:
        with open(folder / f"{audit_id}.log", "ab") as log:
            subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
    except OSError:
        if upload is not None:
            shutil.rmtree(upload, ignore_errors=True)
        AuditState(store, audit_id, entries).save("failed")
        raise
    return audit_id


def _upload_of(store: RunStore, manifest: Path) -> Path | None:
    """The unpacked upload folder ``manifest`` lies in, or None for a manifest of the user's own."""
    uploads = (Path(store.root) / "audit_uploads").resolve()
    path = Path(manifest).resolve()
    if not path.is_relative_to(uploads) or path == uploads:
        return None
    return uploads / path.relative_to(uploads).parts[0]
