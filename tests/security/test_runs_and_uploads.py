"""Runs whose worker is gone are told from runs that live, even when the worker's process id now
belongs to another program; that program is never killed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from nc_core.runs.store import HEARTBEAT_TIMEOUT, RunStore, process_start_time


def test_a_run_whose_worker_id_was_reused_is_interrupted_and_the_new_process_left_alone(tmp_path):
    store = RunStore(tmp_path / "data")
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_id = store.create_run("scan", "m", "d", {})
        store.set_status(run_id, "running", pid=stranger.pid)
        assert store.reap() == [] and store.get(run_id).status == "running", "a live worker with its own id stays"
        with store._write() as db:  # the worker died and the system gave its id to another program
            db.execute("UPDATE runs SET pid_started = ? WHERE id = ?", (process_start_time(stranger.pid) - 1, run_id))
        assert store.reap() == [run_id]
        record = store.get(run_id)
        assert record.status == "interrupted" and "stopped before the run finished" in record.error
        assert stranger.poll() is None, "the process that now holds the id is not ours to kill"
    finally:
        stranger.kill()


def test_a_silent_worker_of_our_own_is_stopped(tmp_path):
    store = RunStore(tmp_path / "data")
    hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_id = store.create_run("scan", "m", "d", {})
        store.set_status(run_id, "running", pid=hung.pid)
        with store._write() as db:
            db.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time() - HEARTBEAT_TIMEOUT - 5, run_id))
        assert store.reap() == [run_id]
        assert "stopped answering" in store.get(run_id).error
        assert hung.wait(timeout=10) is not None, "a hung worker of this run is killed"
    finally:
        hung.kill()


@pytest.mark.integration
def test_two_uploaded_images_of_the_same_name_are_answered_with_that_name(data_dir):
    import io

    import numpy as np
    from PIL import Image

    from tests.helpers.app import MODEL_PAGE, app, literal
    from tests.helpers.paths import SAMPLES

    pictures = []
    for index, name in enumerate(["same.png", "other.png", "same.png"]):
        png = io.BytesIO()
        Image.fromarray(np.full((28, 28), 40 * index, np.uint8)).save(png, format="PNG")
        pictures.append((name, png.getvalue(), "image/png"))
    at = app().run().switch_page(MODEL_PAGE).run()
    at.radio(key="model_source").set_value("Upload your own").run()
    at.radio(key="upload_data_kind").set_value("A few images").run()
    at.file_uploader(key="upload_model").set_value(
        ("m.keras", (SAMPLES / "mnist_backdoored.keras").read_bytes(), "application/octet-stream")
    )
    at.file_uploader(key="upload_images").set_value(pictures)
    at.button(key="upload_use").click().run()
    assert not at.exception
    assert [literal(e.value) for e in at.error] == [
        "Two uploaded images are both named 'same.png': rename one and upload them again."
    ]
    assert "selection" not in at.session_state
