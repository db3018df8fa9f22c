"""Where runs live: an embedded SQLite database (WAL) and a folder of artefacts per run.

The dashboard, the background workers and the CLI all read and write runs here, so a run
survives page reruns, browser refreshes, a second viewer and a restart of the app. Each finished
class is written as soon as it is done (atomically: temporary file, then rename), so a cancelled,
crashed or killed run keeps what it had finished.

Layout under the data directory (``NC_DATA_DIR``, default ``./nc_data``)::

    runs.sqlite                  one row per run: status, settings, verdict, live progress
    runs/<id>/inputs/            the model and data the run was started with
    runs/<id>/classes/<k>.npz    mask and pattern of class k;  <k>.json: its figures and history
    runs/<id>/report.json        the final report (figures only; arrays stay in classes/)

    >>> store = RunStore(); run_id = store.create_run("scan", "m.keras", "d.npz", {"epochs": 60})
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nc_core.detection.margin import MarginResult
from nc_core.detection.report import ScanReport, make_report
from nc_core.detection.samples import TriggeredSamples
from nc_core.errors import DuplicateRunError, RunActiveError, StoreError
from nc_core.files import atomic_write, npz_bytes
from nc_core.optimise.results import EpochRecord, TriggerResult
from nc_core.runs.spec import RepairSpec, ScanSpec, spec_for
from nc_core.runs.status import ACTIVE, STATUSES

DATA_DIR_ENV = "NC_DATA_DIR"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    data TEXT NOT NULL,
    settings TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL,
    verdict TEXT,
    anomaly_index REAL,
    flagged TEXT,
    progress TEXT,
    error TEXT,
    pid INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    origin TEXT,
    imported REAL,
    heartbeat REAL
);
"""
#: Columns added after the first release, added to older databases when they are opened.
_ADDED_COLUMNS = {"origin": "TEXT", "imported": "REAL", "heartbeat": "REAL", "pid_started": "INTEGER"}
#: A running worker beats every ``HEARTBEAT_INTERVAL`` seconds; one silent for ``HEARTBEAT_TIMEOUT``
#: (stopped, hung, or its process id reused by another program) has its run ended as interrupted.
HEARTBEAT_INTERVAL = 10.0
#: A repair run's figures and its repaired model, beside its re-scan's report and classes.
REPAIR_FILE = "repair.json"
REPAIRED_MODEL = "repaired.keras"
HEARTBEAT_TIMEOUT = 60.0


def default_data_dir() -> Path:
    """``$NC_DATA_DIR``, or ``nc_data`` in the working directory."""
    return Path(os.environ.get(DATA_DIR_ENV) or "nc_data").resolve()


@dataclass
class RunRecord:
    """One run as listed: what was scanned, with which settings, where it stands, what it found."""

    id: str
    kind: str
    status: str
    model: str
    data: str
    settings: dict
    created: float
    finished: float | None = None
    verdict: str | None = None
    anomaly_index: float | None = None
    flagged: list[int] = field(default_factory=list)
    progress: dict = field(default_factory=dict)
    error: str | None = None
    pid: int | None = None
    cancel_requested: bool = False
    origin: str | None = None
    imported: float | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def spec(self) -> ScanSpec | RepairSpec:
        """What the run was asked to do, typed (:mod:`nc_core.runs.spec`); defaults where a setting
        cannot be read (an imported bundle's settings are only shown, never run)."""
        try:
            return spec_for(self.kind, self.settings)
        except (TypeError, ValueError, AttributeError):
            return spec_for(self.kind, {})

    @property
    def scan_spec(self) -> ScanSpec:
        """The scan settings: the run's own, or for a repair those of the scan it re-scans with."""
        spec = self.spec
        return spec.scan if isinstance(spec, RepairSpec) else spec


@contextmanager
def _removed_on_failure(path: Path) -> Iterator[None]:
    """Remove ``path`` (a run's folder or a file just written) when the row that goes with it fails.

    Files are written before their row, so a full disk or a locked database leaves neither.
    """
    try:
        yield
    except StoreError:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        raise


class RunStore:
    """Runs in SQLite plus their artefacts on disk; safe for several processes at once.

    Every failure to read or write becomes a :class:`~nc_core.errors.StoreError` with a sentence
    that names the directory, so an unwritable or full disk is reported, not hidden.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).resolve() if root is not None else default_data_dir()
        try:
            (self.root / "runs").mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                present = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
                for column, kind in _ADDED_COLUMNS.items():
                    if column not in present:
                        db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"Cannot use the data directory {self.root}: {error}.") from None

    # ------------------------------------------------------------------ database
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.root / "runs.sqlite", timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as error:
            raise StoreError(f"Cannot write to the run store in {self.root}: {error}.") from None

    def _read(self, query: str, params: tuple = ()) -> list[sqlite3.Row]:
        try:
            with self._connect() as db:
                return db.execute(query, params).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"Cannot read the run store in {self.root}: {error}.") from None

    # ------------------------------------------------------------------ runs
    def run_dir(self, run_id: str) -> Path:
        if not run_id or any(c not in "0123456789abcdef" for c in run_id):
            raise StoreError(f"{run_id!r} is not a run id.")
        return self.root / "runs" / run_id

    def create_run(
        self, kind: str, model: str, data: str, settings: dict, inputs: dict[str, Path] | None = None
    ) -> str:
        """Register a queued run; copy ``inputs`` (name -> file) into its folder first."""
        run_id = uuid.uuid4().hex[:16]
        folder = self.run_dir(run_id)
        try:
            (folder / "classes").mkdir(parents=True)
            for name, source in (inputs or {}).items():
                (folder / "inputs").mkdir(exist_ok=True)
                shutil.copyfile(source, folder / "inputs" / name)
        except OSError as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise StoreError(f"Cannot save the run's files in {self.root}: {error}.") from None
        with _removed_on_failure(folder), self._write() as db:
            db.execute(
                "INSERT INTO runs (id, kind, status, model, data, settings, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, kind, "queued", model, data, json.dumps(settings), time.time()),
            )
        return run_id

    def _record(self, row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            id=row["id"],
            kind=row["kind"],
            status=row["status"],
            model=row["model"],
            data=row["data"],
            settings=json.loads(row["settings"]),
            created=row["created"],
            finished=row["finished"],
            verdict=row["verdict"],
            anomaly_index=row["anomaly_index"],
            flagged=json.loads(row["flagged"] or "[]"),
            progress=json.loads(row["progress"] or "{}"),
            error=row["error"],
            pid=row["pid"],
            cancel_requested=bool(row["cancel_requested"]),
            origin=row["origin"],
            imported=row["imported"],
        )

    def get(self, run_id: str) -> RunRecord:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise StoreError(f"There is no run {run_id}.")
        return self._record(rows[0])

    def list_runs(self, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first (after marking runs whose worker died as interrupted)."""
        self.reap()
        query = "SELECT * FROM runs ORDER BY created DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [self._record(row) for row in self._read(query)]

    def set_status(self, run_id: str, status: str, error: str | None = None, pid: int | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(status)
        finished = None if status in ACTIVE else time.time()
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status = ?, error = COALESCE(?, error), pid = COALESCE(?, pid), finished = ? WHERE id = ?",  # noqa: E501
                (status, error, pid, finished, run_id),
            )
            if pid is not None:  # which process holds this id now, and a first beat: silence counts from here
                db.execute(
                    "UPDATE runs SET pid_started = ?, heartbeat = ? WHERE id = ?",
                    (process_start_time(pid), time.time(), run_id),
                )

    def update_progress(self, run_id: str, progress: dict) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET progress = ? WHERE id = ?", (json.dumps(progress), run_id))

    def request_cancel(self, run_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))

    def cancel_requested(self, run_id: str) -> bool:
        rows = self._read("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,))
        return bool(rows and rows[0][0])

    def beat(self, run_id: str) -> None:
        """The worker is alive and working (see ``HEARTBEAT_TIMEOUT``)."""
        with self._write() as db:
            db.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id))

    def reap(self) -> list[str]:
        """End active runs whose worker is gone or silent as ``interrupted``; return their ids.

        Gone: its process no longer exists. Silent: it has not beaten for ``HEARTBEAT_TIMEOUT``
        seconds (a stopped process, or a process id reused by another program); such a process is
        killed if it is still there, so it cannot wake up and write into a run already ended.
        A killed worker's temporary files are removed, so they are never exported.
        """
        now = time.time()
        ended = []
        for row in self._read("SELECT id, pid, pid_started, heartbeat FROM runs WHERE status IN ('queued', 'running')"):
            if row["pid"] is None:
                continue
            ours = process_alive(row["pid"]) and (
                row["pid_started"] is None or process_start_time(row["pid"]) == row["pid_started"]
            )
            silent = row["heartbeat"] is not None and now - row["heartbeat"] > HEARTBEAT_TIMEOUT
            if ours and not silent:
                continue
            if silent and ours and row["pid"] != os.getpid():  # never a process that merely reuses the id
                _kill(row["pid"])
            reason = (
                f"The worker stopped answering (no heartbeat for {HEARTBEAT_TIMEOUT:.0f} s)."
                if silent and ours
                else "The worker stopped before the run finished."
            )
            self.set_status(row["id"], "interrupted", error=reason)
            self._remove_temporary_files(row["id"])
            ended.append(row["id"])
        return ended

    def _remove_temporary_files(self, run_id: str) -> None:
        for leftover in self.run_dir(run_id).rglob(".*"):
            if leftover.is_file():
                leftover.unlink(missing_ok=True)

    def delete(self, run_id: str) -> None:
        """Delete a finished run and its files; an active run must be cancelled first."""
        self.reap()
        record = self.get(run_id)
        if record.active and record.pid is not None:  # a worker has it (one never started can go)
            raise RunActiveError(
                "The run is still working: cancel it first (finished classes are kept), then delete it."
            )
        folder = self.run_dir(run_id)
        with self._write() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ results
    def save_class_result(self, run_id: str, result: TriggerResult) -> None:
        """Keep one finished class: arrays as npz, figures and history as JSON."""
        folder = self.run_dir(run_id) / "classes"
        figures = {k: v for k, v in asdict(result).items() if k not in ("mask", "pattern")}
        try:
            atomic_write(folder / f"{result.target}.npz", npz_bytes(mask=result.mask, pattern=result.pattern))
            atomic_write(folder / f"{result.target}.json", json.dumps(figures).encode())
        except OSError as error:
            raise StoreError(f"Cannot save class {result.target} in {self.root}: {error}.") from None

    def save_live_trigger(self, run_id: str, target: int, epoch: int, mask: np.ndarray, pattern: np.ndarray) -> None:
        """The mask and pattern of the class being optimised now (the live view draws them)."""
        try:
            atomic_write(
                self.run_dir(run_id) / "live.npz",
                npz_bytes(mask=mask, pattern=pattern, target=np.int64(target), epoch=np.int64(epoch)),
            )
        except OSError:
            pass  # a missed live picture is no reason to stop a run

    def live_trigger(self, run_id: str) -> tuple[int, int, np.ndarray, np.ndarray] | None:
        """``(target, epoch, mask, pattern)`` of the class being optimised now, if the worker wrote one."""
        try:
            with np.load(self.run_dir(run_id) / "live.npz", allow_pickle=False) as arrays:
                return int(arrays["target"]), int(arrays["epoch"]), arrays["mask"], arrays["pattern"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None

    def save_margin(self, run_id: str, margin: MarginResult) -> None:
        """The max-margin test's result, kept as soon as it is known (the live view shows it while
        Neural Cleanse runs, and a resumed scan does not run it again): figures as JSON, the
        inputs that reach each class's margin as npz."""
        folder = self.run_dir(run_id)
        try:
            atomic_write(folder / "margin.npz", npz_bytes(images=np.asarray(margin.images, np.float16)))
            atomic_write(folder / "margin.json", json.dumps(margin.to_dict(include_arrays=False)).encode())
        except OSError as error:
            raise StoreError(f"Cannot save the max-margin result in {self.root}: {error}.") from None

    def margin_result(self, run_id: str) -> MarginResult | None:
        """What :meth:`save_margin` kept, with its images where they were kept too; None before."""
        folder = self.run_dir(run_id)
        try:
            margin = MarginResult.from_dict(json.loads((folder / "margin.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None
        margin.images = self._margin_images(run_id) or []
        return margin

    def _margin_images(self, run_id: str) -> list[np.ndarray] | None:
        try:
            with np.load(self.run_dir(run_id) / "margin.npz", allow_pickle=False) as arrays:
                return list(arrays["images"].astype(np.float32))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None

    def save_samples(self, run_id: str, samples: TriggeredSamples) -> None:
        """One class's triggered samples with the model's predictions (the result view shows them
        without loading the model, as do exported bundles)."""
        try:
            atomic_write(self.run_dir(run_id) / "samples" / f"{samples.target}.npz", samples.to_npz())
        except OSError as error:
            raise StoreError(f"Cannot save the samples of class {samples.target} in {self.root}: {error}.") from None

    def stored_samples(self, run_id: str, target: int) -> TriggeredSamples | None:
        """What :meth:`save_samples` kept for ``target``; None for runs made before samples were kept."""
        try:
            with np.load(self.run_dir(run_id) / "samples" / f"{int(target)}.npz", allow_pickle=False) as arrays:
                return TriggeredSamples.from_arrays(target, arrays)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None

    def class_results(self, run_id: str) -> list[TriggerResult]:
        """The classes this run finished so far, in class order."""
        results = []
        for figures_path in sorted((self.run_dir(run_id) / "classes").glob("*.json")):
            arrays_path = figures_path.with_suffix(".npz")
            if not arrays_path.exists():
                continue
            figures = json.loads(figures_path.read_text())
            figures["history"] = [EpochRecord(**h) for h in figures["history"]]
            with np.load(arrays_path, allow_pickle=False) as arrays:
                results.append(TriggerResult(mask=arrays["mask"], pattern=arrays["pattern"], **figures))
        return sorted(results, key=lambda r: r.target)

    def save_report(self, run_id: str, report: ScanReport) -> None:
        """Store the final report and copy its verdict into the run's row, for listing."""
        path = self.run_dir(run_id) / "report.json"
        try:
            atomic_write(path, report.to_json(include_arrays=False).encode())
        except OSError as error:
            raise StoreError(f"Cannot save the report in {self.root}: {error}.") from None
        with _removed_on_failure(path), self._write() as db:
            db.execute(
                "UPDATE runs SET verdict = ?, anomaly_index = ?, flagged = ? WHERE id = ?",
                (report.verdict, report.anomaly_index, json.dumps(report.flagged), run_id),
            )

    def load_report(self, run_id: str, with_arrays: bool = True) -> ScanReport | None:
        """The run's report with its arrays; for an unfinished run, one made of the finished classes.

        ``with_arrays=False`` reads only a finished run's ``report.json`` (its verdict and figures,
        no masks): what a table of many runs, refreshed every few seconds, needs.
        """
        path = self.run_dir(run_id) / "report.json"
        if not with_arrays:
            return ScanReport.from_json(path.read_text()) if path.exists() else None
        record = self.get(run_id)
        results = self.class_results(run_id)
        margin = self.margin_result(run_id)
        if path.exists():
            report = ScanReport.from_json(path.read_text())
            report.results = results
            images = (
                margin.images if margin is not None else self._margin_images(run_id)
            )  # an import has no margin.json
            if report.margin is not None and images and len(images) == len(report.margin.margins):
                report.margin.images = images
            return report
        if not results:
            return None
        spec = record.scan_spec
        return make_report(
            results,
            model=record.model,
            data=record.data,
            pixel_range=spec.pixel_range or "",
            config=record.settings,
            class_names=list(spec.class_names) or None,
            cancelled=record.status != "done",
            rule=spec.rule,
            margin=margin,
        )

    # ------------------------------------------------------------------ repair runs
    def save_repair(self, run_id: str, figures: dict) -> None:
        """A repair run's before/after figures (:meth:`nc_core.repair.RepairResult.to_dict`)."""
        try:
            atomic_write(self.run_dir(run_id) / REPAIR_FILE, json.dumps(figures).encode())
        except OSError as error:
            raise StoreError(f"Cannot save the repair figures in {self.root}: {error}.") from None

    def load_repair(self, run_id: str) -> dict | None:
        """The figures :meth:`save_repair` stored, or None before the repair finished."""
        path = self.run_dir(run_id) / REPAIR_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def repaired_model_path(self, run_id: str) -> Path | None:
        """The repaired ``.keras`` model a repair run wrote, if it got that far."""
        path = self.run_dir(run_id) / REPAIRED_MODEL
        return path if path.exists() else None

    # ------------------------------------------------------------------ bundles
    def export_bundle(self, run_id: str) -> bytes:
        """A self-contained zip of the run (the format is :mod:`nc_core.runs.bundle`'s)."""
        from nc_core.runs.bundle import write_bundle

        return write_bundle(
            asdict(self.get(run_id)), self.load_report(run_id), self.load_repair(run_id), self.run_dir(run_id)
        )

    def import_bundle(self, data: bytes, reuse: bool = False) -> str:
        """Add a run from an exported bundle under a new id; refuses anything that is not one
        (:func:`nc_core.runs.bundle.read_bundle`).

        The new run keeps where it came from (``origin``: the exported run's id, ``imported``: when),
        and importing the same bundle again (same origin and start time) is refused, naming the
        run it was imported as, instead of making an identical second copy; with ``reuse`` that
        run's id is returned instead (the home page's shipped scans).
        """
        from nc_core.runs.bundle import read_bundle

        record, report_json, class_files, repair_json = read_bundle(data)
        origin = str(record.get("origin") or record.get("id") or "")[:64] or None
        run_id = uuid.uuid4().hex[:16]
        folder = self.run_dir(run_id)
        try:
            for name, content in class_files.items():  # classes/…, samples/…, margin.npz
                atomic_write(folder / name, content)
            if report_json is not None:
                atomic_write(folder / "report.json", report_json.encode())
            if repair_json is not None:
                atomic_write(folder / REPAIR_FILE, repair_json.encode())
        except OSError as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise StoreError(f"Cannot save the imported run in {self.root}: {error}.") from None
        status = record["status"] if record["status"] not in ACTIVE else "interrupted"
        try:
            with _removed_on_failure(folder), self._write() as db:
                # Checked in the insert's own transaction, so two imports at once cannot both pass.
                twin = (
                    db.execute(
                        "SELECT id FROM runs WHERE origin = ? AND created = ?", (origin, record["created"])
                    ).fetchone()
                    if origin
                    else None
                )
                if twin is not None:
                    raise DuplicateRunError(twin["id"])
                db.execute(
                    "INSERT INTO runs (id, kind, status, model, data, settings, created, finished, verdict, "
                    "anomaly_index, flagged, progress, error, origin, imported) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        record["kind"],
                        status,
                        record["model"],
                        record["data"],
                        json.dumps(record["settings"]),
                        record["created"],
                        record.get("finished"),
                        record.get("verdict"),
                        record.get("anomaly_index"),
                        json.dumps(record.get("flagged", [])),
                        json.dumps(record.get("progress", {})),
                        record.get("error"),
                        origin,
                        time.time(),
                    ),
                )
        except DuplicateRunError as duplicate:
            shutil.rmtree(folder, ignore_errors=True)
            if reuse:
                return duplicate.run_id
            raise
        return run_id


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat``, field 22); None
    where there is no ``/proc``. Two processes that share an id one after the other differ here."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(") ", 1)[-1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    """Whether a process with this id is still running (not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True
