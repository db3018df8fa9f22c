"""The run store: rows, artefacts, partial reports, bundles, and what a broken disk gives."""

import io
import json
import os
import time
import zipfile

import numpy as np
import pytest

from nc_core.detection.report import make_report
from nc_core.errors import DuplicateRunError, InvalidDataError, RunActiveError, StoreError
from nc_core.files import atomic_write
from nc_core.runs.store import RunStore
from tests.helpers.bundles import VALID_RUN, npz_bytes, zip_bytes
from tests.helpers.results import random_result


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "data")


def test_a_run_keeps_its_classes_and_report_across_store_instances(store, tmp_path):
    run_id = store.create_run("scan", "m.keras", "d.npz", {"config": {"epochs": 3}})
    results = [random_result(k, l1) for k, l1 in enumerate([40.0, 41.0, 5.0, 39.0, 42.0])]
    for r in results:
        store.save_class_result(run_id, r)
    store.save_report(run_id, make_report(results, "m.keras", "d.npz"))
    store.set_status(run_id, "done")

    reopened = RunStore(tmp_path / "data")
    record = reopened.get(run_id)
    assert (record.status, record.verdict, record.flagged) == ("done", "backdoored", [2])
    report = reopened.load_report(run_id)
    assert [r.target for r in report.results] == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(report.result_for(2).mask, results[2].mask)
    assert report.result_for(2).history[-1].l1 == 5.0


def test_an_unfinished_run_shows_the_classes_it_finished(store):
    run_id = store.create_run("scan", "m.keras", "d.npz", {"config": {}})
    assert store.load_report(run_id) is None
    store.save_class_result(run_id, random_result(3, 12.0))
    partial = store.load_report(run_id)
    assert [r.class_id for r in partial.rows] == [3] and partial.cancelled


def test_runs_are_listed_newest_first_and_deleted_with_their_files(store):
    first = store.create_run("scan", "a", "d", {})
    second = store.create_run("reverse", "b", "d", {})
    assert [r.id for r in store.list_runs()] == [second, first]
    store.delete(first)
    assert [r.id for r in store.list_runs()] == [second]
    assert not store.run_dir(first).exists()


def test_a_run_whose_worker_died_is_marked_interrupted(store):
    run_id = store.create_run("scan", "m", "d", {})
    store.set_status(run_id, "running", pid=2**22 + 12345)  # no such process
    assert store.reap() == [run_id]
    assert store.get(run_id).status == "interrupted"


def test_cancel_is_requested_through_the_store(store):
    run_id = store.create_run("scan", "m", "d", {})
    assert not store.cancel_requested(run_id)
    store.request_cancel(run_id)
    assert store.cancel_requested(run_id)


def test_bundles_round_trip_into_a_new_run(store):
    run_id = store.create_run("scan", "m.keras", "d.npz", {"config": {"epochs": 3}})
    results = [random_result(k, l1) for k, l1 in enumerate([40.0, 41.0, 5.0, 39.0])]
    for r in results:
        store.save_class_result(run_id, r)
    store.save_report(run_id, make_report(results, "m.keras", "d.npz"))
    store.set_status(run_id, "done")
    bundle = store.export_bundle(run_id)
    names = zipfile.ZipFile(io.BytesIO(bundle)).namelist()
    assert {"run.json", "report.json", "summary.json", "classes/2.npz", "images/002_fusion.png"} <= set(names)

    copy_id = store.import_bundle(bundle)
    assert copy_id != run_id
    copy = store.load_report(copy_id)
    assert copy.verdict == "backdoored" and copy.flagged == [2]
    np.testing.assert_array_equal(copy.result_for(1).pattern, results[1].pattern)
    record = store.get(copy_id)
    assert record.origin == run_id and record.imported is not None and store.get(run_id).imported is None


def test_importing_the_same_bundle_twice_names_the_first_copy(store):
    run_id = store.create_run("scan", "m.keras", "d.npz", {"config": {"epochs": 3}})
    store.save_class_result(run_id, random_result(0, 5.0))
    bundle = store.export_bundle(run_id)
    copy_id = store.import_bundle(bundle)
    with pytest.raises(DuplicateRunError, match=copy_id):
        store.import_bundle(bundle)
    with pytest.raises(DuplicateRunError, match=copy_id):
        store.import_bundle(store.export_bundle(copy_id))  # a copy exported again is the same run
    assert len(store.list_runs()) == 2


def test_a_store_made_before_imports_were_marked_opens_and_gains_the_columns(tmp_path):
    import sqlite3

    (tmp_path / "runs").mkdir()
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:
        db.execute(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, "
            "model TEXT NOT NULL, data TEXT NOT NULL, settings TEXT NOT NULL, created REAL NOT NULL, "
            "finished REAL, verdict TEXT, anomaly_index REAL, flagged TEXT, progress TEXT, error TEXT, "
            "pid INTEGER, cancel_requested INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute(
            "INSERT INTO runs (id, kind, status, model, data, settings, created) "
            "VALUES ('ab12', 'scan', 'done', 'm', 'd', '{}', 1.0)"
        )
    old = RunStore(tmp_path)
    assert old.get("ab12").imported is None and old.get("ab12").origin is None


@pytest.mark.parametrize(
    "bundle,needle",
    [
        (b"not a zip", "not a zip"),
        (zip_bytes({"report.json": "{}"}), "run.json is missing"),
        (zip_bytes({"run.json": "{}"}), "lacks"),
        (zip_bytes({"run.json": "{", "x": ""}), "unexpected file"),
        (zip_bytes({"../evil.json": "{}"}), "unexpected file"),
        (zip_bytes({"/etc/passwd": "x"}), "unexpected file"),
        (zip_bytes({"run.json": json.dumps(VALID_RUN), "classes/1.npz": b"garbage"}), "not a readable array"),
        (
            zip_bytes(
                {"run.json": json.dumps({k: "" for k in ("kind", "status", "model", "data", "settings", "created")})}
            ),
            "kind is not scan, reverse or repair",
        ),
        (zip_bytes({"run.json": json.dumps({**VALID_RUN, "created": 1e300})}), "time is out of range"),
        (zip_bytes({"run.json": json.dumps({**VALID_RUN, "settings": {"class_names": [{"x": 1}]}})}), "class names"),
        (zip_bytes({"run.json": json.dumps({**VALID_RUN, "flagged": ["1; DROP"]})}), "flagged classes"),
        (zip_bytes({"run.json": "[" * 100_000 + "]" * 100_000}), "nested too deeply"),
        (
            zip_bytes({"run.json": json.dumps(VALID_RUN), "report.json": json.dumps({"rows": [{"class_id": 1}]})}),
            "report.json: the field 'model' is missing",
        ),
        (
            zip_bytes({"run.json": json.dumps(VALID_RUN), "classes/1.json": json.dumps({"target": 1})}),
            "not a class result",
        ),
        (
            zip_bytes(
                {
                    "run.json": json.dumps(VALID_RUN),
                    "classes/1.npz": npz_bytes(
                        mask=np.zeros((8, 8), np.float32), pattern=np.zeros((9, 9, 3), np.float32)
                    ),
                }
            ),
            "different or impossible shapes",
        ),
    ],
)
def test_hostile_or_broken_bundles_are_refused(store, bundle, needle):
    with pytest.raises(InvalidDataError, match=needle):
        store.import_bundle(bundle)
    assert store.list_runs() == []


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "f.json"
    atomic_write(target, b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_an_unwritable_data_directory_gives_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(StoreError, match="Cannot use the data directory"):
        RunStore(locked / "data")


def test_a_data_directory_that_is_a_file_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="Cannot use the data directory"):
        RunStore(blocker)


def test_an_active_run_cannot_be_deleted_until_it_is_cancelled(store):
    run_id = store.create_run("scan", "m", "d", {})
    store.set_status(run_id, "running", pid=os.getpid())
    with pytest.raises(RunActiveError, match="cancel it first"):
        store.delete(run_id)
    assert store.get(run_id).status == "running" and store.run_dir(run_id).exists()
    store.set_status(run_id, "cancelled")
    store.delete(run_id)
    assert store.list_runs() == []


def test_a_stopped_worker_is_ended_within_the_timeout_and_its_temporary_files_go(store, monkeypatch):
    import signal
    import subprocess

    from nc_core.runs import store as store_module

    worker = subprocess.Popen(["sleep", "600"])
    try:
        worker.send_signal(signal.SIGSTOP)  # a stopped process still exists: only the heartbeat tells
        run_id = store.create_run("scan", "m", "d", {})
        store.set_status(run_id, "running", pid=worker.pid)
        store.save_class_result(run_id, random_result(0, 5.0))
        leftover = store.run_dir(run_id) / "classes" / ".1.npz.tmp123"
        leftover.write_bytes(b"half a file")
        store.beat(run_id)
        assert store.reap() == [] and store.get(run_id).active, "a fresh beat keeps the run"
        monkeypatch.setattr(
            store_module.time, "time", lambda: time.time_ns() / 1e9 + store_module.HEARTBEAT_TIMEOUT + 1
        )
        assert store.reap() == [run_id]
        record = store.get(run_id)
        assert record.status == "interrupted" and "stopped answering" in record.error
        assert worker.wait(timeout=10) == -signal.SIGKILL, "the silent worker cannot wake up and write on"
        assert not leftover.exists()
        names = zipfile.ZipFile(io.BytesIO(store.export_bundle(run_id))).namelist()
        assert "classes/0.npz" in names and not any("/." in name for name in names)
        store.delete(run_id)
    finally:
        worker.kill()
