"""Scan every model of a manifest as Ray tasks, storing each as a normal scan run as it finishes.

Why Ray: one embedded call (``ray.init()``) runs a local cluster with a worker per core, and the
same code joins a real cluster by address; scheduling, retries of tasks whose worker died, and
resources (CPUs, GPUs) are Ray's. Each model is one task: a scan's classes share one loaded model
and one compiled step, so splitting a model's classes over tasks loads and traces it once per
worker (:mod:`nc_core.optimise.ray_runner` does, for one model on many cores); a zoo has many
more models than a machine has cores anyway.

Each task runs :func:`nc_core.runs.worker.execute` on a run of the store, so an audited model opens in
the dashboard like any scan, with the same heartbeat and the same resume from finished classes.
The audit's own record (``<data>/audits/<id>.json``) maps manifest entries to runs; running the
same manifest with the same settings again resumes: finished models are not redone, interrupted
ones continue from their finished classes.

    >>> from nc_core.audit.manifest import read_manifest
    >>> result = run_audit(read_manifest(manifest), audit_settings(epochs=3), store)
    >>> result.metrics["backdoored_exact"], result.metrics["false_positives"], result.metrics["roc_auc"]
    (1, 0, 1.0)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nc_core.audit.manifest import AuditEntry
from nc_core.audit.metrics import AuditOutcome, audit_metrics
from nc_core.detection.detect import DetectionRule
from nc_core.errors import InvalidParameterError
from nc_core.files import atomic_write
from nc_core.optimise.cluster import TASK_RETRIES, start_ray
from nc_core.optimise.config import CleanseConfig
from nc_core.runs.spec import ScanSpec
from nc_core.runs.store import RunStore, process_alive

#: Seconds an audit started from the dashboard may take for its driver to come up.
STARTING_GRACE = 120


@dataclass(frozen=True)
class AuditSettings:
    """The scan every model gets (the ``scan`` command's settings), and how many workers run."""

    config: CleanseConfig = field(default_factory=CleanseConfig)
    rule: DetectionRule = field(default_factory=DetectionRule)
    max_samples: int | None = None

    def run_settings(self) -> dict:
        """The settings every model's scan shares, as an audit's identity hashes them
        (:func:`audit_id_for`); each run stores them in its :class:`~nc_core.runs.spec.ScanSpec`."""
        return {
            "config": asdict(self.config),
            "classes": None,
            "pixel_range": None,
            "max_samples": self.max_samples,
            **self.rule.to_dict(),
        }


@dataclass
class AuditRow:
    """One model's outcome: its run in the store, the verdict, and what was known about it."""

    index: int
    model: str
    data: str
    label: str | None
    targets: list[int]
    run_id: str | None
    status: str
    verdict: str | None = None
    flagged: list[int] = field(default_factory=list)
    score: float = float("nan")
    anomaly_index: float = float("nan")
    seconds: float = float("nan")
    error: str | None = None

    def outcome(self) -> AuditOutcome:
        return AuditOutcome(self.label, tuple(self.targets), self.verdict, tuple(self.flagged), self.score)


@dataclass
class AuditResult:
    """Every row, the labelled figures, and (for a stored audit) whether it still runs."""

    audit_id: str
    rows: list[AuditRow]
    metrics: dict
    seconds: float
    workers: int
    status: str = "done"

    def to_dict(self) -> dict:
        return {
            "audit": self.audit_id,
            "workers": self.workers,
            "seconds": self.seconds,
            "models": [asdict(r) for r in self.rows],
            "metrics": self.metrics,
        }


def audit_settings(
    epochs: int | None = None,
    screen_epochs: int | None = None,
    seed: int | None = None,
    max_samples: int | None = None,
    rule: DetectionRule | None = None,
    margin_steps: int | None = None,
    margin_starts: int | None = None,
) -> AuditSettings:
    """The product's scan with these overrides: the CLI and the dashboard build audits alike.

    Each scan optimises one class at a time (``threads=1``): an audit already keeps every core
    busy with one scan per core, and more threads would only compete for them. ``rule`` judges
    every model (the product's by default); it is part of the audit's identity.
    """
    changes = {
        "epochs": epochs,
        "screen_epochs": screen_epochs,
        "seed": seed,
        "threads": 1,
        "margin_steps": margin_steps,
        "margin_starts": margin_starts,
    }
    config = CleanseConfig().replace(**{k: v for k, v in changes.items() if v is not None})
    config.validate(10**9)
    return AuditSettings(config=config, rule=rule or DetectionRule(), max_samples=max_samples)


def audit_id_for(entries: list[AuditEntry], settings: AuditSettings) -> str:
    """The same manifest with the same settings is the same audit (so a rerun resumes it)."""
    payload = json.dumps(
        [[str(e.model), str(e.data)] for e in entries] + [settings.run_settings()], sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def run_audit(
    entries: list[AuditEntry],
    settings: AuditSettings,
    store: RunStore,
    ray_address: str | None = None,
    workers: int | None = None,
    on_row: Callable[[AuditRow, int, int], None] | None = None,
    remove_upload: Path | None = None,
) -> AuditResult:
    """Scan every entry (resuming an earlier run of the same audit); ``on_row(row, done, total)``
    is called as each model finishes. ``ray_address`` None starts an embedded local Ray with
    ``workers`` CPUs (default: all cores) bound to 127.0.0.1; ``"auto"`` or ``"ray://host:port"``
    joins a cluster.

    ``remove_upload`` is the dashboard's unpacked upload: every model and data file is copied into
    its run first, so the upload is removed then, or when the audit fails before.
    """
    import ray

    started = time.perf_counter()
    audit_id = audit_id_for(entries, settings)
    state = AuditState(store, audit_id, entries)
    state.pid = os.getpid()
    state.save("running")
    rows = [_row(i, e) for i, e in enumerate(entries)]
    pending = []
    try:
        for row, entry in zip(rows, entries):
            _attach(row, entry, state, store, settings)
            if row.status not in ("done", "failed", "missing"):
                pending.append(row)
    except BaseException:
        state.save("interrupted")
        raise
    finally:
        _remove_upload(store, remove_upload)
    finished = len(rows) - len(pending)
    for row in rows:
        if row.status in ("done", "failed", "missing"):
            _fill(row, store)
    if not pending:  # everything finished in an earlier attempt: nothing to start
        state.save("done")
        metrics = audit_metrics([row.outcome() for row in rows])
        return AuditResult(audit_id, rows, metrics, time.perf_counter() - started, workers or 0)
    workers = start_ray(ray_address, workers)  # a task whose worker died runs again (the scan resumes)
    threads = max(1, (os.cpu_count() or 1) // workers) if ray_address is None else None
    task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_scan_task)
    running = {task.remote(str(store.root), row.run_id, threads): row for row in pending}
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            row = running.pop(ready[0])
            try:
                ray.get(ready[0])
            except Exception as error:  # the task failed even after its retries
                store.set_status(row.run_id, "failed", error=f"The audit task failed: {type(error).__name__}")
            _fill(row, store)
            finished += 1
            if on_row is not None:
                on_row(row, finished, len(rows))
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        ray.shutdown()
        state.save("interrupted" if running else "done")
    metrics = audit_metrics([row.outcome() for row in rows])
    return AuditResult(audit_id, rows, metrics, time.perf_counter() - started, workers)


def _remove_upload(store: RunStore, folder: Path | None) -> None:
    """Delete an unpacked dashboard upload; only ever a folder under the store's ``audit_uploads``."""
    if folder is None:
        return
    uploads = (Path(store.root) / "audit_uploads").resolve()
    target = Path(folder).resolve()
    if target.parent == uploads:
        shutil.rmtree(target, ignore_errors=True)


def _scan_task(store_root: str, run_id: str, threads: int | None) -> str:
    """A Ray task: run one stored scan to its end in this worker process (resuming finished classes)."""
    from nc_core.runs.worker import execute
    from nc_core.runtime import configure_backend

    configure_backend(threads)
    return execute(RunStore(store_root), run_id)


def _row(index: int, entry: AuditEntry) -> AuditRow:
    return AuditRow(index, entry.model.name, entry.data.name, entry.label, list(entry.targets), None, "queued")


def _attach(row: AuditRow, entry: AuditEntry, state: AuditState, store: RunStore, settings: AuditSettings) -> None:
    """Find the entry's run from an earlier attempt, or create it (copying the model and data)."""
    run_id = state.runs.get(str(row.index))
    if run_id is not None:
        try:
            record = store.get(run_id)
        except Exception:  # deleted since: scan it again
            record = None
        if record is not None:
            row.run_id, row.status = run_id, record.status
            return
    missing = [p for p in (entry.model, entry.data) if not p.exists()]
    if missing:
        row.status, row.error = "missing", f"{missing[0].name!r} does not exist."
        state.fail(row.index, row.error)
        return
    model_file = "model" + entry.model.suffix.lower()
    data_file = "data" + (entry.data.suffix.lower() if entry.data.is_file() else "")
    spec = ScanSpec(
        config=settings.config,
        rule=settings.rule,
        max_samples=settings.max_samples,
        model_file=model_file,
        data_file=data_file,
        audit=state.audit_id,
        label=entry.label,
        targets=tuple(entry.targets),
    )
    inputs = {model_file: entry.model} | ({data_file: entry.data} if entry.data.is_file() else {})
    row.run_id = store.create_run("scan", entry.model.name, entry.data.name, spec.to_settings(), inputs)
    if entry.data.is_dir():
        import shutil

        shutil.copytree(entry.data, store.run_dir(row.run_id) / "inputs" / data_file)
    row.status = "queued"
    state.record(row.index, row.run_id)


def _fill(row: AuditRow, store: RunStore) -> None:
    """The row's verdict and figures from its stored run."""
    if row.run_id is None:
        return
    record = store.get(row.run_id)
    row.status, row.error = record.status, record.error
    report = store.load_report(row.run_id, with_arrays=False) if record.status == "done" else None
    if report is not None:
        row.verdict, row.flagged = report.verdict, list(report.flagged)
        row.score, row.anomaly_index, row.seconds = (
            float(report.score),
            float(report.anomaly_index),
            float(report.seconds),
        )


class AuditState:
    """``<data>/audits/<id>.json``: the audit's entries, which run each got (written as runs are
    made), and whether its driver is running (its pid) or ended, so the dashboard can follow it."""

    def __init__(self, store: RunStore, audit_id: str, entries: list[AuditEntry] | None = None):
        self.audit_id = audit_id
        self.path = audits_dir(store) / f"{audit_id}.json"
        saved = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.runs: dict[str, str] = saved.get("runs", {})
        self.errors: dict[str, str] = saved.get("errors", {})
        self.created = saved.get("created", time.time())
        self.entries = (
            [{"model": e.name, "data": e.data.name, "label": e.label, "targets": list(e.targets)} for e in entries]
            if entries is not None
            else saved.get("entries", [])
        )
        self.status, self.pid = saved.get("status", "running"), saved.get("pid")

    def record(self, index: int, run_id: str) -> None:
        self.runs[str(index)] = run_id
        self.save()

    def fail(self, index: int, error: str) -> None:
        """An entry that could not become a run (its files are missing)."""
        self.errors[str(index)] = error
        self.save()

    def save(self, status: str | None = None) -> None:
        self.status = status or self.status
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "audit": self.audit_id,
            "created": self.created,
            "status": self.status,
            "pid": self.pid,
            "entries": self.entries,
            "runs": self.runs,
            "errors": self.errors,
        }
        atomic_write(self.path, json.dumps(payload).encode())


def audits_dir(store: RunStore) -> Path:
    return Path(store.root) / "audits"


def list_audits(store: RunStore) -> list[str]:
    """Stored audits, newest first."""
    paths = sorted(audits_dir(store).glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.stem for p in paths if re.fullmatch(r"[0-9a-f]{16}", p.stem)]


def load_audit(store: RunStore, audit_id: str) -> AuditResult:
    """An audit as stored so far (running or ended): its rows filled from the runs, its metrics;
    ``status`` is ``running`` only while its driver process lives."""
    if not re.fullmatch(r"[0-9a-f]{16}", audit_id) or not (audits_dir(store) / f"{audit_id}.json").exists():
        raise InvalidParameterError(f"There is no audit {audit_id[:40]!r}.")
    state = AuditState(store, audit_id)
    rows = []
    for index, entry in enumerate(state.entries):
        row = AuditRow(
            index,
            entry["model"],
            entry["data"],
            entry.get("label"),
            list(entry.get("targets", [])),
            state.runs.get(str(index)),
            "queued",
        )
        if str(index) in state.errors:
            row.status, row.error = "missing", state.errors[str(index)]
        try:
            _fill(row, store)
        except Exception:  # a run deleted since: the row says so
            row.status = "deleted"
        rows.append(row)
    status = state.status
    if status == "starting":  # the dashboard wrote it; the driver takes over within seconds
        status = "running" if time.time() - state.created < STARTING_GRACE else "interrupted"
    elif status == "running" and not (state.pid and process_alive(state.pid)):
        status = "interrupted"
    result = AuditResult(audit_id, rows, audit_metrics([r.outcome() for r in rows]), time.time() - state.created, 0)
    result.status = status
    return result
