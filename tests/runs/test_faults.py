"""Faults a shared dashboard meets: killed workers, restarts, concurrent scans, cancels, full or
read-only disks, and hostile model files.

Runs go through real worker processes (:func:`nc_core.runs.worker.submit_run`) on a temporary
:class:`RunStore`; each worker imports TensorFlow, so it needs 5-10 s before its first class.
Disk faults are made in child processes: a file-size limit (``RLIMIT_FSIZE`` with ``SIGXFSZ``
ignored, so writes fail with EFBIG as on a full disk) and a read-only bind mount in a private
mount namespace (``unshare``), which also holds for root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from nc_core.optimise.config import CleanseConfig
from nc_core.runs.spec import ScanSpec
from nc_core.runs.store import RunStore
from nc_core.runs.worker import submit_run
from tests.helpers.paths import ROOT, sample_path

MODEL = sample_path("mnist_backdoored.keras")
DATA = sample_path("mnist_data.npz")
ALL_CLASSES = list(range(10))
SLOW_EPOCHS = 20  # about 2 s a class on a busy CPU: room to kill or cancel between classes


def _settings(classes: list[int], epochs: int, seed: int = 0) -> ScanSpec:
    return ScanSpec(config=CleanseConfig(epochs=epochs, confirm_runs=0, seed=seed), classes=tuple(classes))


def _wait(store: RunStore, run_id: str, ready, timeout: float = 180) -> None:
    """Poll until ``ready()``; on timeout fail with the tail of the worker's log."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            log = (store.run_dir(run_id) / "worker.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"run {run_id} is still {store.get(run_id).status} after {timeout} s; log:\n{log}")
        time.sleep(0.05)


def _wait_until_finished(store: RunStore, run_id: str, timeout: float = 180) -> None:
    _wait(store, run_id, lambda: not store.get(run_id).active, timeout)


def _targets(store: RunStore, run_id: str) -> list[int]:
    return [result.target for result in store.class_results(run_id)]


def _integrity(root) -> str:
    with sqlite3.connect(root / "runs.sqlite") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh store; any worker still running at the end of the test is killed."""
    monkeypatch.chdir(ROOT)  # workers start as ``python -m nc_core.runs.worker`` from the working directory
    runs = RunStore(tmp_path / "data")
    yield runs
    for record in runs.list_runs():
        if record.active and record.pid:
            try:
                os.kill(record.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --------------------------------------------------------------------------- workers


@pytest.mark.integration
def test_a_killed_worker_leaves_an_interrupted_run_with_its_finished_classes(store):
    run_id = submit_run(store, "scan", MODEL, DATA, _settings(ALL_CLASSES, SLOW_EPOCHS))
    _wait(store, run_id, lambda: len(_targets(store, run_id)) >= 1)
    os.kill(store.get(run_id).pid, signal.SIGKILL)
    _wait(store, run_id, lambda: store.list_runs()[0].status == "interrupted", timeout=10)

    record = store.get(run_id)
    assert record.error == "The worker stopped before the run finished."
    finished = _targets(store, run_id)
    assert 1 <= len(finished) < len(ALL_CLASSES)
    partial = store.load_report(run_id)
    assert partial.cancelled and [row.class_id for row in partial.rows] == finished

    after = submit_run(store, "scan", MODEL, DATA, _settings([0, 1], epochs=2))
    _wait_until_finished(store, after)
    assert store.get(after).status == "done" and _targets(store, after) == [0, 1]
    assert store.get(run_id).status == "interrupted" and _targets(store, run_id) == finished
    assert _integrity(store.root) == "ok"


@pytest.mark.integration
def test_three_scans_at_once_each_keep_their_own_results_and_survive_a_restart(store):
    plans = {"a": ([0, 1], 2, 11), "b": ([3, 4, 5], 3, 22), "c": ([7, 8], 4, 33)}
    ids = {
        name: submit_run(store, "scan", MODEL, DATA, _settings(classes, epochs, seed))
        for name, (classes, epochs, seed) in plans.items()
    }
    for run_id in ids.values():
        _wait_until_finished(store, run_id, timeout=240)

    for name, run_id in ids.items():
        classes, epochs, seed = plans[name]
        record = store.get(run_id)
        assert record.status == "done", record.error
        assert record.settings["classes"] == classes and record.settings["config"]["seed"] == seed
        assert record.progress["num_classes"] == len(classes)
        report = store.load_report(run_id)
        assert [row.class_id for row in report.rows] == classes == _targets(store, run_id)
        assert (report.config["epochs"], report.config["seed"]) == (epochs, seed)
        assert all(1 <= len(result.history) <= epochs for result in report.results)
        files = {path.name for path in (store.run_dir(run_id) / "classes").iterdir()}
        assert files == {f"{k}.{suffix}" for k in classes for suffix in ("npz", "json")}
    assert _integrity(store.root) == "ok"

    reopened = RunStore(store.root)
    assert {record.id for record in reopened.list_runs()} == set(ids.values())
    for run_id in ids.values():
        before, after = store.get(run_id), reopened.get(run_id)
        assert (after.status, after.verdict, after.anomaly_index, after.flagged) == (
            before.status,
            before.verdict,
            before.anomaly_index,
            before.flagged,
        )
        old, new = store.load_report(run_id), reopened.load_report(run_id)
        assert new.rows == old.rows and new.verdict == before.verdict
        for old_result, new_result in zip(old.results, new.results):
            np.testing.assert_array_equal(new_result.mask, old_result.mask)
            np.testing.assert_array_equal(new_result.pattern, old_result.pattern)


@pytest.mark.integration
def test_a_cancelled_run_stops_and_keeps_its_finished_classes(store):
    run_id = submit_run(store, "scan", MODEL, DATA, _settings(ALL_CLASSES, SLOW_EPOCHS))
    _wait(store, run_id, lambda: len(_targets(store, run_id)) >= 1)
    store.request_cancel(run_id)
    _wait_until_finished(store, run_id, timeout=60)

    record = store.get(run_id)
    assert record.status == "cancelled" and record.error is None
    finished = _targets(store, run_id)
    assert 1 <= len(finished) < len(ALL_CLASSES)
    report = store.load_report(run_id)
    assert report.cancelled and [row.class_id for row in report.rows] == finished


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["lambda.keras", "random.h5"])
def test_a_run_with_a_hostile_model_fails_with_a_sentence(store, tmp_path, kind):
    marker = tmp_path / "lambda_ran"
    model_path = tmp_path / kind
    if kind == "lambda.keras":
        from tests.helpers.tiny_models import lambda_model

        lambda_model(str(marker)).save(model_path)
        expected = "The model holds Python code (a Lambda layer) that is refused for safety"
    else:
        model_path.write_bytes(np.random.default_rng(0).bytes(4096))
        expected = "'model.h5' is damaged or not an HDF5 model file."
    run_id = submit_run(store, "scan", model_path, DATA, _settings([0, 1], epochs=2))
    _wait_until_finished(store, run_id)

    record = store.get(run_id)
    assert record.status == "failed"
    assert record.error.startswith(expected) and "\n" not in record.error
    assert "Traceback" not in (store.run_dir(run_id) / "worker.log").read_text(errors="replace")
    assert _targets(store, run_id) == [] and store.load_report(run_id) is None
    assert not marker.exists()


# --------------------------------------------------------------------------- disks

# A child process: a store with one queued run, then a file-size limit, then one write.
_DISK_FULL = textwrap.dedent("""
    import json, resource, signal, sys
    sys.path[:0] = [{root!r}]
    from nc_core.errors import StoreError
    from nc_core.detection.report import make_report
    from nc_core.runs.store import RunStore
    from tests.helpers.results import random_result

    store = RunStore({data!r})
    run_id = store.create_run("scan", "m.keras", "d.npz", {{}})
    source = RunStore({data!r} + "_source")
    source_id = source.create_run("scan", "m.keras", "d.npz", {{}})
    source.save_class_result(source_id, random_result(0, 5.0))
    bundle = source.export_bundle(source_id)
    operations = {{
        "class": lambda: store.save_class_result(run_id, random_result(0, 5.0)),
        "report": lambda: store.save_report(
            run_id, make_report([random_result(k, 5.0 + k) for k in range(3)], "m", "d")
        ),
        "run": lambda: store.create_run("scan", "m.keras", "d.npz", {{}}),
        "run_with_inputs": lambda: store.create_run("scan", "m.keras", "d.npz", {{}}, {{"model.keras": {model!r}}}),
        "import": lambda: store.import_bundle(bundle),
    }}
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, hard))
    try:
        operations[{operation!r}]()
        outcome = "no error"
    except StoreError as error:
        outcome = str(error)
    except Exception as error:
        outcome = "not a StoreError: " + repr(error)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    runs = [[r.id, r.status, r.verdict] for r in store.list_runs()]
    print(json.dumps({{"run_id": run_id, "outcome": outcome, "runs": runs}}))
""")


@pytest.mark.parametrize(
    "operation,limit,message",
    [
        ("class", 300, "Cannot save class 0 in {data}: [Errno 27] File too large."),
        ("report", 300, "Cannot save the report in {data}: [Errno 27] File too large."),
        ("report", 5000, "Cannot write to the run store in {data}: disk I/O error."),
        ("run", 5000, "Cannot write to the run store in {data}: disk I/O error."),
        ("run_with_inputs", 5000, "Cannot save the run's files in {data}: [Errno 27] File too large"),
        ("import", 300, "Cannot save the imported run in {data}: [Errno 27] File too large."),
        ("import", 5000, "Cannot write to the run store in {data}: disk I/O error."),
    ],
    ids=["class-file", "report-file", "report-row", "run-row", "run-inputs", "import-files", "import-row"],
)
def test_a_full_disk_gives_a_store_error_and_no_half_written_run(tmp_path, operation, limit, message):
    """A limit of 300 bytes fails the artefact files; 5000 lets them through and fails SQLite."""
    data = tmp_path / "data"
    model = tmp_path / "model.keras"
    model.write_bytes(os.urandom(20_000))
    script = _DISK_FULL.format(root=str(ROOT), data=str(data), model=str(model), limit=limit, operation=operation)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    assert result["outcome"].startswith(message.format(data=data)), result["outcome"]
    assert result["runs"] == [[result["run_id"], "queued", None]]  # no new run, no verdict
    assert [path.name for path in (data / "runs").iterdir()] == [result["run_id"]]
    assert list((data / "runs" / result["run_id"]).rglob("*")) == [data / "runs" / result["run_id"] / "classes"]
    assert _integrity(data) == "ok"


def _read_only_namespace_works(folder) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} {folder}"
            f" && ! touch {folder}/probe 2>/dev/null",
        ],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0 and not (folder / "probe").exists()


_READ_ONLY = textwrap.dedent("""
    import json, subprocess, sys
    sys.path[:0] = [{root!r}]
    from nc_core.errors import StoreError
    from nc_core.runs.store import RunStore
    from tests.helpers.results import random_result

    store = RunStore({data!r})
    run_id = store.create_run("scan", "m.keras", "d.npz", {{}})
    for command in (["mount", "--bind", {folder!r}, {folder!r}], ["mount", "-o", "remount,ro,bind", {folder!r}]):
        subprocess.run(command, check=True)
    outcomes = {{}}
    for name, call in {{
        "class": lambda: store.save_class_result(run_id, random_result(0, 5.0)),
        "run": lambda: store.create_run("scan", "m.keras", "d.npz", {{}}),
        "new store": lambda: RunStore({fresh!r}),
    }}.items():
        try:
            call()
            outcomes[name] = "no error"
        except StoreError as error:
            outcomes[name] = str(error)
    print(json.dumps({{"run_id": run_id, "outcomes": outcomes}}))
""")


def test_a_read_only_data_directory_gives_store_errors(tmp_path):
    """Root ignores file modes, so the directory is made read-only by a bind mount in a private namespace."""
    folder = tmp_path / "volume"
    folder.mkdir()
    if not _read_only_namespace_works(folder):
        pytest.skip("cannot make a read-only bind mount here (unshare -rm with mount is not permitted)")
    data, fresh = folder / "data", folder / "fresh"
    script = _READ_ONLY.format(root=str(ROOT), data=str(data), folder=str(folder), fresh=str(fresh))
    done = subprocess.run(["unshare", "-rm", sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    outcomes = result["outcomes"]
    assert outcomes["class"].startswith(f"Cannot save class 0 in {data}: [Errno 30] Read-only file system")
    assert outcomes["run"].startswith(f"Cannot save the run's files in {data}: [Errno 30] Read-only file system")
    assert outcomes["new store"].startswith(f"Cannot use the data directory {fresh}: [Errno 30] Read-only file system")
    reopened = RunStore(data)  # outside the namespace the directory is writable again
    assert [record.id for record in reopened.list_runs()] == [result["run_id"]]
    assert _targets(reopened, result["run_id"]) == []
    assert _integrity(data) == "ok"
