"""Audit inputs: an uploaded zip is bounded as a whole and leaves nothing behind; a manifest's
paths stay in its folder, its targets are class indices and each model is listed once; the Ray
the app starts listens on this machine only."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile

import pytest

from nc_core.audit.manifest import read_manifest
from nc_core.errors import InvalidDataError
from tests.helpers.app import AUDIT_PAGE, app, literal
from tests.helpers.paths import ROOT, SAMPLES


@pytest.mark.integration
def test_a_zip_of_many_small_bombs_is_refused_on_the_audit_page_and_leaves_nothing(data_dir):
    upload = io.BytesIO()
    with zipfile.ZipFile(upload, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(500):
            archive.writestr(f"m{index}.npz", b"\0" * 1_000_000)  # each under 1 MB: passes the per-file rule
    assert len(upload.getvalue()) < 2_000_000
    at = app().run().switch_page(AUDIT_PAGE).run()
    at.file_uploader(key="audit_upload").set_value(("bomb.zip", upload.getvalue(), "application/zip"))
    at.button(key="audit_submit").click().run()
    assert not at.exception
    assert any("looks like a zip bomb" in literal(error.value) for error in at.error), [e.value for e in at.error]
    uploads = data_dir / "audit_uploads"
    assert not uploads.exists() or not any(uploads.rglob("*"))


def _manifest(folder, rows: str):
    (folder / "m.csv").write_text("model,data,label,targets\n" + rows)
    return folder / "m.csv"


@pytest.mark.parametrize(
    "rows,needle",
    [
        ("../outside.keras,d.npz,,\n", "leads outside the manifest's folder"),
        ("/etc/passwd.keras,d.npz,,\n", "leads outside the manifest's folder"),
        ("link.keras,d.npz,,\n", "leads outside the manifest's folder"),
        ("a.keras,d.npz,backdoored,12345678901234567890\n", "targets must be class indices"),
        ("a.keras,d.npz,backdoored,-1\n", "targets must be class indices"),
        ("a.keras,d.npz,,\nb.keras,d.npz,,\n./a.keras,d.npz,,\n", "entries 1 and 3 both scan 'a.keras'"),
    ],
)
def test_a_manifest_that_leaves_its_folder_or_misnames_targets_is_refused(tmp_path, rows, needle):
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / "link.keras").symlink_to(SAMPLES / "mnist_clean.keras")  # a symbolic link out of the folder
    with pytest.raises(InvalidDataError, match=needle):
        read_manifest(_manifest(folder, rows))


@pytest.mark.integration
def test_the_cli_refuses_such_a_manifest_with_a_clean_error_and_accepts_a_root(tmp_path):
    manifest = _manifest(tmp_path, f"{SAMPLES / 'mnist_clean.keras'},{SAMPLES / 'mnist_data.npz'},clean,\n")
    env = {**os.environ, "NC_DATA_DIR": str(tmp_path / "nc_data")}
    done = subprocess.run(
        [sys.executable, "-m", "nc_core", "audit", str(manifest), "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "leads outside the manifest's folder" in done.stderr
    assert "Traceback" not in done.stderr
    assert [e.model.name for e in read_manifest(manifest, root=SAMPLES)] == ["mnist_clean.keras"]


@pytest.mark.integration
def test_the_local_ray_of_an_audit_or_a_scan_listens_on_127_0_0_1_only():
    """In a process of its own, as the audit driver is (Ray keeps its authentication mode per process);
    audits and scans start their local Ray with the same function."""
    pytest.importorskip("ray")
    script = (
        "import ray\n"
        "import ray._private.ray_constants as constants\n"
        "from nc_core.optimise.cluster import start_ray\n"
        "start_ray(None, 1)\n"
        "answer = ray.get(ray.remote(lambda: 42).remote())\n"
        "print(ray.get_runtime_context().gcs_address, answer, constants.ENABLE_RAY_CLUSTER)\n"
        "ray.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    address, answer, cluster_mode_after = done.stdout.split()[-3:]
    assert address.startswith("127.0.0.1:") and answer == "42", "a loopback-only cluster that runs tasks"
    assert cluster_mode_after == "True", "joining a cluster later is unaffected"
