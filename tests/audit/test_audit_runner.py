"""The audit runner on an embedded local Ray: real scans of the shipped MNIST twins, stored as runs,
resumed without redoing finished models, a missing model reported as its own row."""

import pytest

pytest.importorskip("ray")

from nc_core.audit.manifest import AuditEntry  # noqa: E402
from nc_core.audit.runner import AuditSettings, run_audit  # noqa: E402
from nc_core.optimise.config import CleanseConfig  # noqa: E402
from nc_core.runs.store import RunStore  # noqa: E402
from tests.helpers.paths import sample_path  # noqa: E402

SHORT = AuditSettings(config=CleanseConfig(epochs=6, screen_epochs=3, confirm_runs=0))


@pytest.mark.integration
def test_an_audit_stores_every_model_as_a_scan_run_and_resumes(tmp_path):
    data = sample_path("mnist_data.npz")
    entries = [
        AuditEntry(sample_path("mnist_backdoored.keras"), data, "backdoored", (7,)),
        AuditEntry(sample_path("mnist_clean.keras"), data, "clean"),
        AuditEntry(tmp_path / "gone.keras", data, "clean"),
    ]
    store = RunStore(tmp_path / "nc_data")
    seen = []
    result = run_audit(entries, SHORT, store, workers=2, on_row=lambda row, done, total: seen.append((done, total)))
    rows = {row.model: row for row in result.rows}
    assert rows["gone.keras"].status == "missing" and "does not exist" in rows["gone.keras"].error
    for name in ("mnist_backdoored.keras", "mnist_clean.keras"):
        record = store.get(rows[name].run_id)
        assert record.kind == "scan" and record.status == "done" and record.settings["audit"] == result.audit_id
        assert rows[name].verdict == record.verdict and store.load_report(record.id) is not None
    assert seen[-1] == (3, 3)
    assert result.metrics["models"] == 2 and result.metrics["clean"] == 1

    again = run_audit(entries, SHORT, store, workers=2)  # the same audit: nothing is scanned again
    assert again.audit_id == result.audit_id and again.seconds < 5
    assert [r.run_id for r in again.rows] == [r.run_id for r in result.rows]
    assert len(store.list_runs()) == 2


# --------------------------------------------------------------------------- faults and clusters

import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from tests.helpers.paths import ROOT  # noqa: E402

SLOWER = AuditSettings(config=CleanseConfig(epochs=25, screen_epochs=0, confirm_runs=0))


def _wait_for_running(store: RunStore, timeout: float = 120) -> object:
    deadline = time.time() + timeout
    while time.time() < deadline:
        running = [r for r in store.list_runs() if r.status == "running" and r.pid]
        if running:
            return running[0]
        time.sleep(0.2)
    raise AssertionError("no audit run started")


@pytest.mark.integration
def test_a_ray_worker_killed_mid_scan_is_retried_and_the_audit_completes(tmp_path):
    store = RunStore(tmp_path / "nc_data")
    entries = [AuditEntry(sample_path("mnist_backdoored.keras"), sample_path("mnist_data.npz"), "backdoored", (7,))]
    outcome = {}
    driver = threading.Thread(target=lambda: outcome.update(result=run_audit(entries, SLOWER, store, workers=1)))
    driver.start()
    victim = _wait_for_running(store)
    time.sleep(3)  # into the scan, some classes done
    os.kill(victim.pid, signal.SIGKILL)
    driver.join(timeout=400)
    (row,) = outcome["result"].rows
    record = store.get(row.run_id)
    assert record.status == "done" and record.pid != victim.pid and row.verdict is not None


@pytest.fixture
def ray_cluster(tmp_path):
    """``ray start --head`` on 127.0.0.1 with a free port, as an operator would start a head node."""
    ray = shutil.which("ray") or str(__import__("pathlib").Path(sys.executable).with_name("ray"))
    with __import__("socket").socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp = __import__("tempfile").mkdtemp(prefix="nc-ray-", dir="/tmp")  # Ray's socket paths must stay short
    started = subprocess.run(
        [
            ray,
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--temp-dir",
            temp,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.integration
def test_an_audit_joins_a_running_ray_cluster_by_address(ray_cluster, tmp_path):
    store = RunStore(tmp_path / "nc_data")
    entries = [AuditEntry(sample_path("mnist_clean.keras"), sample_path("mnist_data.npz"), "clean")]
    result = run_audit(entries, SHORT, store, ray_address=ray_cluster)
    assert result.workers == 2 and result.rows[0].status == "done"


@pytest.mark.integration
def test_an_interrupted_audit_resumes_without_redoing_finished_models(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "model,data,label,targets\n"
        f"{sample_path('mnist_clean.keras')},{sample_path('mnist_data.npz')},clean,\n"
        f"{sample_path('mnist_backdoored.keras')},{sample_path('mnist_data.npz')},backdoored,7\n"
    )
    env = {**os.environ, "NC_DATA_DIR": str(tmp_path / "nc_data")}
    command = [
        sys.executable,
        "-m",
        "nc_core",
        "audit",
        str(manifest),
        "--root",
        str(ROOT),
        "--workers",
        "1",
        "--epochs",
        "25",
        "--screen-epochs",
        "0",
        "--format",
        "json",
    ]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = RunStore(tmp_path / "nc_data")
    deadline = time.time() + 300
    while not any(r.status == "done" for r in store.list_runs()) and time.time() < deadline:
        time.sleep(0.5)
    first.send_signal(signal.SIGINT)  # Ctrl-C with one model finished
    first.communicate(timeout=600)  # a generous ceiling: Ray's shutdown is slow on a busy machine
    finished = {r.id for r in store.list_runs() if r.status == "done"}
    assert len(finished) >= 1
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    result = __import__("json").loads(again.stdout)
    assert {m["status"] for m in result["models"]} == {"done"} and len(store.list_runs()) == 2
    assert finished <= {m["run_id"] for m in result["models"]}
