"""The dashboard's pages, driven with Streamlit's AppTest (no browser), on the shipped mnist sample.

Runs are real: the pages start detached workers that train triggers on the mnist sample, so the
tests that wait for them take about a minute together. Each test gets its own ``NC_DATA_DIR``.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.helpers.app import (
    APP,
    AUDIT_PAGE,
    MODEL_PAGE,
    REPAIR_PAGE,
    REVERSE_PAGE,
    RUNS_PAGE,
    SCAN_PAGE,
    app,
    literal,
    store,
    upload,
    use_data_dir,
)
from tests.helpers.paths import ROOT, SAMPLES
from tests.helpers.results import random_result

RUN_TIMEOUT = 240  # seconds a real mnist run may take on a busy 2-core machine

needs_mnist = pytest.mark.skipif(
    not (SAMPLES / "mnist_backdoored.keras").exists() or not (SAMPLES / "mnist_data.npz").exists(),
    reason="the mnist sample is not built (python sample_models/make_samples.py mnist)",
)


def mnist_card() -> dict:
    return json.loads((SAMPLES / "mnist_backdoored.json").read_text())


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory):
    """One data directory for the tests that share the real runs (reverse, scan, runs page)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield use_data_dir(monkeypatch, tmp_path_factory.mktemp("shared") / "nc_data")


def open_sample(sample: str = "mnist_backdoored") -> AppTest:
    """Home page → pick a sample → "Start with the sample" (lands on the model page)."""
    at = app().run()
    at.selectbox(key="home_sample").set_value(sample)
    at.button(key="start_sample").click().run()
    assert not at.exception, at.exception
    return at


def wait_for(folder: Path, run_id: str, timeout: float = RUN_TIMEOUT):
    """Poll the store until the worker finished the run; return its record."""
    runs = store(folder)
    deadline = time.time() + timeout
    while runs.get(run_id).active and time.time() < deadline:
        time.sleep(2)
    record = runs.get(run_id)
    assert not record.active, f"run {run_id} still {record.status} after {timeout} s"
    return record


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(literal(element.value) for element in at.get(kind))


def alerts(at: AppTest) -> str:
    """The text of every st.error, st.warning, st.info and st.success on the page."""
    return "\n".join(
        literal(element.value) for group in (at.error, at.warning, at.info, at.success) for element in group
    )


def banners(at: AppTest) -> list[str]:
    """Verdict banners on the page."""
    return [
        e.value
        for e in [*at.error, *at.warning, *at.success]
        if e.value.startswith(("### Backdoored", "### Clean", "### Inconclusive"))
    ]


def image_count(at: AppTest) -> int:
    return sum(len(element.proto.imgs) for element in at.get("image"))


def image_captions(at: AppTest) -> list[str]:
    return [literal(image.caption) for element in at.get("image") for image in element.proto.imgs]


# ------------------------------------------------------------------------------------ home


def test_home_shows_without_importing_tensorflow(data_dir):
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False False"


def test_home_lists_recent_runs_with_links_to_the_runs_page(data_dir):
    runs = store(data_dir)
    run_id = runs.create_run("scan", "mnist_backdoored.keras", "mnist_data.npz", {"config": {"epochs": 3}})
    runs.set_status(run_id, "done")

    at = app().run()

    assert not at.exception
    assert at.title[0].value == "Neural Cleanse dashboard"
    table = at.dataframe[0].value
    assert list(table["model"]) == ["mnist_backdoored.keras"] and list(table["status"]) == ["done"]
    links = [link.proto for link in at.get("page_link")]
    assert any(run_id in link.label and "run=" + run_id in link.query_string for link in links)


def test_home_without_runs_says_so(data_dir):
    at = app().run()
    assert "No runs yet" in texts(at, "caption")


# ------------------------------------------------------------------------------------ model page


@needs_mnist
def test_model_page_shows_what_was_understood_about_the_mnist_sample(data_dir):
    at = open_sample("mnist_backdoored")

    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Input shape"] == "28×28×1"
    assert metrics["Classes"] == "10"
    assert metrics["Outputs"] in ("probabilities", "logits")
    assert metrics["Clean accuracy"] == f"{mnist_card()['clean_accuracy']:.1%}"
    assert next(box for box in at.selectbox if box.label == "Pixel range the model expects").value == "0-255"
    assert "Model card" in texts(at, "subheader")
    assert image_count(at) > 0 and len(at.get("plotly_chart")) == 1


def test_other_pages_ask_for_a_selection_first(data_dir):
    at = app().run()
    for page in (REVERSE_PAGE, SCAN_PAGE):
        at.switch_page(page).run()
        assert "Choose a model and its data first." in alerts(at)


@needs_mnist
def test_the_model_page_selects_nothing_until_the_user_chooses(data_dir):
    at = app().run().switch_page(MODEL_PAGE).run()

    assert "selection" not in at.session_state
    assert at.selectbox(key="model_sample").value is None
    assert "Choose a sample or upload a model and its data." in alerts(at)
    at.radio(key="model_source").set_value("Upload your own").run()
    assert "selection" not in at.session_state, "uploading starts from nothing chosen"


@pytest.mark.integration
@needs_mnist
def test_random_bytes_as_a_model_are_answered_with_an_error(data_dir):
    at = app().run().switch_page(MODEL_PAGE).run()
    at.selectbox(key="model_sample").set_value("signs_backdoored").run()
    at = upload(at, ("model.keras", os.urandom(4096)), ("mnist_data.npz", (SAMPLES / "mnist_data.npz").read_bytes()))

    assert not at.exception
    assert len(at.error) == 1 and "'model.keras'" in literal(at.error[0].value)
    assert at.session_state["selection"].model_label == "signs_backdoored.keras"  # the earlier choice stays


@needs_mnist
def test_data_that_does_not_fit_the_model_is_answered_with_an_error(data_dir):
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((8, 32, 32, 3), np.uint8), y=np.arange(8) % 2)
    at = upload(
        app().run().switch_page(MODEL_PAGE).run(),
        ("mnist_backdoored.keras", (SAMPLES / "mnist_backdoored.keras").read_bytes()),
        ("colour.npz", buffer.getvalue()),
    )

    assert not at.exception
    assert len(at.error) == 1
    assert "32x32x3" in literal(at.error[0].value) and "28x28x1" in literal(at.error[0].value)


@pytest.mark.integration
@needs_mnist
def test_a_few_uploaded_images_of_one_class_are_understood_and_can_be_scanned(data_dir):
    with np.load(SAMPLES / "mnist_data.npz") as npz:
        x, y = npz["x"], npz["y"]
    pictures = []
    for index in np.flatnonzero(y == 3)[:8]:
        png = io.BytesIO()
        Image.fromarray(np.asarray(x[index]).reshape(28, 28).astype(np.uint8)).save(png, format="PNG")
        pictures.append((f"three_{index}.png", png.getvalue(), "image/png"))
    at = app().run().switch_page(MODEL_PAGE).run()
    at.radio(key="model_source").set_value("Upload your own").run()
    at.radio(key="upload_data_kind").set_value("A few images").run()
    at.file_uploader(key="upload_model").set_value(
        ("mnist_backdoored.keras", (SAMPLES / "mnist_backdoored.keras").read_bytes(), "application/octet-stream")
    )
    at.file_uploader(key="upload_images").set_value(pictures)
    at.number_input(key="upload_one_class").set_value(3)
    at.button(key="upload_use").click().run()

    assert not at.exception and not at.error, [e.value for e in at.error]
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Samples"] == "8" and metrics["Input shape"] == "28×28×1"
    assert "picked by accuracy" in texts(at, "caption")

    at.switch_page(REVERSE_PAGE).run()
    at.selectbox(key="reverse_target").set_value(mnist_card()["target"])
    at.number_input(key="reverse_epochs").set_value(2)
    at.number_input(key="reverse_batch").set_value(4)
    at.button(key="reverse_submit").click().run()
    record = wait_for(data_dir, at.session_state["reverse_run"])
    assert record.status == "done", record.error
    assert record.settings["pixel_range"] == "0-255"  # the range picked on the images, handed to the worker


# ------------------------------------------------------------------------------------ real runs


@pytest.fixture(scope="module")
def reverse_run(shared_dir):
    """A 5-epoch reverse run of the mnist target class, started on the reverse page."""
    at = open_sample("mnist_backdoored").switch_page(REVERSE_PAGE).run()
    at.selectbox(key="reverse_target").set_value(mnist_card()["target"])
    at.number_input(key="reverse_epochs").set_value(5)
    at.button(key="reverse_submit").click().run()
    seen = {"progress_while_running": len(at.get("progress")) > 0, "query": dict(at.query_params)}
    run_id = at.session_state["reverse_run"]
    record = wait_for(shared_dir, run_id)
    at.run()
    return at, record, seen


@pytest.fixture(scope="module")
def scan_run(shared_dir):
    """A short real scan of all 10 mnist classes, started on the scan page."""
    at = open_sample("mnist_backdoored").switch_page(SCAN_PAGE).run()
    at.number_input(key="scan_epochs").set_value(8)
    at.button(key="scan_submit").click().run()
    seen = {"progress_while_running": len(at.get("progress")) > 0}
    run_id = at.session_state["scan_run"]
    started = time.time()
    record = wait_for(shared_dir, run_id)
    seen["seconds"] = time.time() - started
    at.run()
    return at, record, seen


@pytest.mark.integration
@needs_mnist
def test_reverse_page_shows_progress_then_the_trigger_of_the_target(reverse_run):
    at, record, seen = reverse_run

    assert seen["progress_while_running"]
    assert seen["query"]["run"] == record.id
    assert record.status == "done", record.error
    assert not at.exception and not at.get("progress")
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Epochs"] == "5"
    assert metrics["Attack success rate"].endswith("%")
    assert image_count(at) >= 3 + 2 * 6  # mask, pattern, fusion; clean and triggered samples
    assert [button.label for button in at.get("download_button")] == [
        "Download HTML report",
        "Mask PNG",
        "Pattern PNG",
        "Mask × pattern PNG",
    ]


@pytest.mark.integration
@needs_mnist
def test_reverse_page_finds_its_run_again_from_the_url(reverse_run, shared_dir):
    _, record, _ = reverse_run
    at = open_sample("mnist_backdoored").switch_page(REVERSE_PAGE)
    at.query_params["run"] = record.id
    at.run()
    assert record.id in texts(at, "caption")
    assert {metric.label for metric in at.metric} >= {"Mask L1 (pixels)", "Attack success rate"}


@pytest.mark.integration
@needs_mnist
def test_scan_page_reaches_a_verdict_on_the_mnist_sample(scan_run, shared_dir):
    at, record, seen = scan_run

    assert seen["progress_while_running"]
    assert record.status == "done", record.error
    assert not at.exception
    assert len(banners(at)) == 1
    assert banners(at)[0].lower().startswith(f"### {record.verdict}")
    assert {metric.label for metric in at.metric} >= {
        "Score",
        "Median L1",
        "Anomaly index (paper)",
        "Detection threshold L1",
    }
    table = at.dataframe[0].value
    assert sorted(table["class"]) == list(range(10))
    assert {"mask L1", "anomaly index", "attack success", "standing"} <= set(table.columns)
    assert {"max margin", "margin p-value", "flagged by"} <= set(table.columns), "the second method's evidence"
    assert [chart.key for chart in at.get("plotly_chart")] == ["scan_l1", "scan_margin"]
    assert "Second method: max-margin" in texts(at, "subheader")
    assert image_count(at) >= 10
    stored = store(shared_dir).stored_samples(record.id, record.flagged[0] if record.flagged else 0)
    assert stored is not None and len(stored) == 6, "the worker keeps each class's triggered samples"
    assert any(caption.startswith(f"{stored.labels[0]} → ") for caption in image_captions(at))


@needs_mnist
def test_the_ray_option_shows_only_where_the_operator_configured_it(data_dir, monkeypatch):
    at = open_sample("mnist_backdoored").switch_page(SCAN_PAGE).run()
    assert not at.exception and "scan_ray" not in [box.key for box in at.checkbox]

    monkeypatch.setenv("NC_RAY_ADDRESS", "10.1.2.3:6379")
    at = open_sample("mnist_backdoored").switch_page(SCAN_PAGE).run()
    option = at.checkbox(key="scan_ray")
    assert option.label == "Run the classes on the server's Ray cluster" and not option.value
    assert "10.1.2.3" not in option.label + str(option.help), "the operator's address stays off the page"


@pytest.mark.integration
@needs_mnist
def test_a_scan_sent_to_ray_from_the_scan_page_runs_there(data_dir, monkeypatch):
    monkeypatch.setenv("NC_RAY_ADDRESS", "local:2")
    at = open_sample("mnist_backdoored").switch_page(SCAN_PAGE).run()
    assert at.checkbox(key="scan_ray").label == "Run the classes on 2 Ray workers"
    at.multiselect(key="scan_classes").set_value([6, 7])
    at.number_input(key="scan_epochs").set_value(3)
    at.checkbox(key="scan_ray").check()
    at.button(key="scan_submit").click().run()

    record = wait_for(data_dir, at.session_state["scan_run"])
    assert record.status == "done", record.error
    assert record.settings["ray"] == "local:2"
    assert store(data_dir).load_report(record.id).device == "a local Ray cluster of 2 workers"
    at.run()
    assert "on tensorflow on a local Ray cluster of 2 workers" in texts(at, "caption")


@pytest.mark.integration
@needs_mnist
def test_runs_page_lists_exports_imports_and_deletes_runs(reverse_run, scan_run, shared_dir):
    _, scan_record, _ = scan_run
    at = app().run().switch_page(RUNS_PAGE).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 2
    assert [button.label for button in at.get("download_button")][0] == "Export bundle (.zip)"

    before = {r.id for r in store(shared_dir).list_runs()}
    bundle = store(shared_dir).export_bundle(scan_record.id)
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        assert {"run.json", "report.json"} <= set(archive.namelist())
    at.file_uploader(key="import_bundle").set_value(("bundle.zip", bundle, "application/zip")).run()
    at.button(key="import_button").click().run()
    assert "The run was imported." in [s.value for s in at.success]
    runs = {r.id: r for r in store(shared_dir).list_runs()}
    (imported,) = set(runs) - before
    assert runs[imported].verdict == scan_record.verdict and runs[imported].kind == "scan"

    at.selectbox(key="runs_open").set_value(imported).run()
    assert banners(at) and banners(at)[0].lower().startswith(f"### {scan_record.verdict}")
    at.button(key="delete_run").click().run()
    assert "cannot be undone" in at.warning[0].value
    at.button(key="delete_confirm").click().run()
    assert {r.id for r in store(shared_dir).list_runs()} == before


@pytest.mark.integration
@needs_mnist
def test_a_run_page_opened_afresh_on_its_link_shows_the_run_without_a_selection(reverse_run, scan_run):
    for (_, record, _), page in ((reverse_run, REVERSE_PAGE), (scan_run, SCAN_PAGE)):
        at = app()
        at.query_params["run"] = record.id
        at.run().switch_page(page).run()  # a fresh session: nothing selected
        assert not at.exception
        assert "selection" not in at.session_state
        assert "Choose a model and its data first." not in alerts(at)
        assert record.id in texts(at, "caption")
        assert at.query_params["run"] == record.id
        if page == SCAN_PAGE:
            assert banners(at) and banners(at)[0].lower().startswith(f"### {record.verdict}")


@needs_mnist
def test_runs_page_compares_two_scans(scan_run, shared_dir):
    _, scan_record, _ = scan_run
    copy = store(shared_dir).import_bundle(store(shared_dir).export_bundle(scan_record.id))
    at = app().run().switch_page(RUNS_PAGE).run()
    assert at.selectbox(key="compare_1").value and at.selectbox(key="compare_2").value
    assert len(at.get("plotly_chart")) >= 2  # the open run's L1 chart and the comparison
    store(shared_dir).delete(copy)


@pytest.mark.integration
@needs_mnist
def test_a_finished_scan_is_repaired_in_the_background_and_the_repair_page_shows_before_and_after(scan_run, shared_dir):
    _, scan_record, _ = scan_run
    at = app()
    at.query_params["run"] = scan_record.id
    at.run().switch_page(SCAN_PAGE).run()
    assert "Repair this model" in [h.value for h in at.subheader]
    at.number_input(key=f"repair_epochs_{scan_record.id}").set_value(3)
    if scan_record.verdict != "backdoored":  # a short scan may not get there; the form then asks to force
        at.checkbox(key=f"repair_force_{scan_record.id}").check()
    at.button(key=f"repair_submit_{scan_record.id}").click().run()
    assert not at.exception, at.exception
    repairs = [r for r in store(shared_dir).list_runs() if r.kind == "repair"]
    assert len(repairs) == 1 and repairs[0].settings["source_run"] == scan_record.id
    assert repairs[0].settings["trigger_card"]["target"] == mnist_card()["target"]  # the sample's own file
    record = wait_for(shared_dir, repairs[0].id)
    assert record.status == "done", record.error
    page = app()
    page.query_params["run"] = record.id
    page.run().switch_page(REPAIR_PAGE).run()
    assert not page.exception
    assert "Before and after, on held-out samples" in [h.value for h in page.subheader]
    figures = page.dataframe[0].value
    assert list(figures["figure"])[0] == "clean accuracy" and list(figures["figure"])[-1].startswith(
        "attack success, real trigger"
    )
    assert "Download the repaired model (.keras)" in [b.label for b in page.get("download_button")]
    assert banners(page) and banners(page)[0].lower().startswith(f"### {record.verdict}")


def test_the_repair_page_without_a_run_says_where_repairs_start(data_dir):
    at = app().run().switch_page(REPAIR_PAGE).run()
    assert not at.exception and "Repair this model" in alerts(at)


@pytest.mark.integration
@needs_mnist
def test_an_audit_of_an_uploaded_zip_runs_in_the_background_and_fills_its_table(data_dir, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # Ray's own default (token authentication) stays on
    from nc_core.audit.runner import list_audits, load_audit

    upload = io.BytesIO()
    with zipfile.ZipFile(upload, "w") as archive:
        archive.writestr(
            "audit/manifest.csv",
            "model,data,label,targets\nmnist_clean.keras,mnist_data.npz,clean,\n"
            "missing.keras,mnist_data.npz,backdoored,7\n",
        )
        archive.write(SAMPLES / "mnist_clean.keras", "audit/mnist_clean.keras")
        archive.write(SAMPLES / "mnist_data.npz", "audit/mnist_data.npz")
        archive.writestr("../evil.csv", "x")  # never written outside: refused
    at = app().run().switch_page(AUDIT_PAGE).run()
    at.file_uploader(key="audit_upload").set_value(("audit.zip", upload.getvalue(), "application/zip"))
    at.number_input(key="audit_epochs").set_value(3)
    at.button(key="audit_submit").click().run()
    assert [literal(e.value) for e in at.error] == [
        "'audit.zip' holds an unsafe file name '../evil.csv' (absolute or with '..')."
    ]

    upload = io.BytesIO(upload.getvalue())
    with zipfile.ZipFile(upload) as archive, zipfile.ZipFile(good := io.BytesIO(), "w") as clean:
        for info in archive.infolist():
            if not info.filename.startswith(".."):
                clean.writestr(info, archive.read(info))
    at.file_uploader(key="audit_upload").set_value(("audit.zip", good.getvalue(), "application/zip"))
    at.button(key="audit_submit").click().run()
    assert not at.exception and not at.error
    (audit_id,) = list_audits(store(data_dir))
    deadline = time.time() + RUN_TIMEOUT
    while load_audit(store(data_dir), audit_id).status == "running" and time.time() < deadline:
        time.sleep(2)
    result = load_audit(store(data_dir), audit_id)
    assert result.status == "done" and [r.status for r in result.rows] == ["done", "missing"]
    assert not any((data_dir / "audit_uploads").iterdir()), "the upload is removed once its models are copied"
    at.run()
    table = at.dataframe[0].value
    assert list(table["model"]) == ["mnist_clean.keras", "missing.keras"]
    assert table["verdict"][0] == result.rows[0].verdict and table["verdict"][1] == "missing"
    assert "Download the table (.csv)" in [b.label for b in at.get("download_button")]
    assert {m.label for m in at.metric} >= {"Accuracy", "Clean flagged", "ROC-AUC"}


def test_a_bad_bundle_is_answered_with_an_error(data_dir):
    at = app().run().switch_page(RUNS_PAGE).run()
    at.file_uploader(key="import_bundle").set_value(("bundle.zip", b"not a zip", "application/zip")).run()
    at.button(key="import_button").click().run()
    assert not at.exception and len(at.error) == 1


@pytest.mark.integration
@needs_mnist
def test_settings_that_cannot_run_are_answered_with_an_error(data_dir):
    at = open_sample("mnist_backdoored").switch_page(REVERSE_PAGE).run()
    at.number_input(key="reverse_max").set_value(10)
    at.button(key="reverse_submit").click().run()
    assert not at.exception
    assert [literal(e.value) for e in at.error] == ["Batch size 32 is larger than the 10 samples in the data."]
    assert store(data_dir).list_runs() == []


@pytest.mark.integration
@needs_mnist
def test_cancel_stops_a_scan(data_dir):
    at = open_sample("mnist_backdoored").switch_page(SCAN_PAGE).run()
    at.button(key="scan_submit").click().run()
    run_id = at.session_state["scan_run"]
    at.button(key=f"cancel_{run_id}").click().run()
    assert "Cancelling" in alerts(at)
    record = wait_for(data_dir, run_id, timeout=120)
    assert record.status == "cancelled"
    at.run()
    assert "The run was cancelled" in alerts(at)


# ------------------------------------------------------------------------------------ access


def _stored_scan(folder: Path) -> str:
    runs = store(folder)
    run_id = runs.create_run("scan", "mnist_backdoored.keras", "mnist_data.npz", {"config": {"epochs": 3}})
    runs.set_status(run_id, "done")
    return run_id


@pytest.mark.integration
@needs_mnist
def test_reviewer_mode_hides_uploads_runs_delete_and_import(data_dir, monkeypatch):
    monkeypatch.setenv("NC_REVIEWER_MODE", "1")
    _stored_scan(data_dir)

    at = open_sample("mnist_backdoored")
    assert at.radio(key="model_source").options == ["Shipped sample"]
    for page in (REVERSE_PAGE, SCAN_PAGE):
        at.switch_page(page).run()
        assert "Runs are disabled in reviewer mode" in at.info[0].value
        assert not at.button and not at.get("form")
    at.switch_page(RUNS_PAGE).run()
    assert len(at.dataframe[0].value) == 1
    labels = [b.label for b in at.button]
    assert "Delete run" not in labels and "Import" not in labels and not at.file_uploader
    assert [b.label for b in at.get("download_button")] == ["Export bundle (.zip)"]


@pytest.mark.integration
def test_password_gate_blocks_every_page_until_the_right_password(data_dir, monkeypatch):
    monkeypatch.setenv("NC_PASSWORD", "open sesame")
    at = app().run()
    assert [t.label for t in at.text_input] == ["Password"] and [b.label for b in at.button] == ["Enter"]
    assert "Recent runs" not in texts(at, "subheader")
    at.switch_page(RUNS_PAGE).run()
    assert [t.label for t in at.text_input] == ["Password"] and not at.dataframe

    at.text_input(key="password_input").input("wrong")
    at.button[0].click().run()
    assert at.error[0].value == "That password is not right."
    assert at.title[0].value != "Runs"

    at.text_input(key="password_input").input("open sesame")
    at.button[0].click().run()
    assert at.title[0].value == "Runs" and not at.text_input


def test_password_from_secrets_is_used_and_missing_secrets_do_not_crash(data_dir):
    at = app().run()
    assert not at.exception and not at.text_input  # no secrets file at all: no gate

    at = app()
    at.secrets["password"] = "from secrets"
    at.run()
    assert [t.label for t in at.text_input] == ["Password"]
    at.text_input(key="password_input").input("from secrets")
    at.button[0].click().run()
    assert not at.text_input and "Recent runs" in texts(at, "subheader")


def test_a_link_with_a_run_id_opens_that_run_on_the_runs_page(data_dir):
    first, second = _stored_scan(data_dir), _stored_scan(data_dir)
    at = app().run().switch_page(RUNS_PAGE).run()
    assert at.selectbox(key="runs_open").value == second  # the newest first
    at.switch_page("app.py").run()
    at.query_params["run"] = first
    at.switch_page(RUNS_PAGE).run()
    assert at.selectbox(key="runs_open").value == first
    assert not at.warning and not at.exception


def test_a_running_scan_shows_the_current_class_and_fills_in_the_finished_ones(data_dir):
    runs = store(data_dir)
    run_id = runs.create_run("scan", "m.keras", "d.npz", {"config": {"epochs": 60}, "class_names": ["a", "b", "c"]})
    runs.set_status(run_id, "running", pid=os.getpid())  # this process: alive, so the run is live
    runs.update_progress(
        run_id,
        {
            "kind": "epoch",
            "target": 2,
            "class_index": 2,
            "num_classes": 3,
            "epoch": 4,
            "max_epochs": 10,
            "step": 10,
            "steps_per_epoch": 10,
            "fraction": 0.5,
            "elapsed": 3.0,
            "phase": "screen",
            "curves": [],
        },
    )
    for target, l1 in ((0, 40.0), (1, 4.0)):
        runs.save_class_result(run_id, random_result(target, l1))
    live = random_result(2, 30.0)
    runs.save_live_trigger(run_id, 2, 4, live.mask, live.pattern)

    at = app()
    at.query_params["run"] = run_id
    at.run().switch_page(SCAN_PAGE).run()
    assert not at.exception
    assert "Screening every class: 3 of 3" in "\n".join(literal(m.value) for m in at.markdown)
    assert "So far: 2 class(es) finished" in texts(at, "subheader")
    assert image_count(at) >= 3 + 2, "the current class's three pictures and the finished classes' strips"
    assert len(at.get("plotly_chart")) >= 1
    runs.set_status(run_id, "done")


@pytest.mark.integration
def test_the_home_page_opens_a_shipped_finished_scan_in_one_click(data_dir):
    at = app().run()
    at.button(key="open_scan_mnist_backdoored").click().run()
    assert not at.exception
    runs = store(data_dir).list_runs()
    assert len(runs) == 1 and runs[0].imported and runs[0].verdict == "backdoored"
    assert banners(at) and banners(at)[0].startswith("### Backdoored")
    assert at.query_params["run"] == runs[0].id
    card = mnist_card()
    assert "The same samples with the recovered trigger" in texts(at, "caption"), (
        "a shipped scan shows triggered samples without loading its model"
    )
    assert any(re.fullmatch(rf"\d → {card['target']} \(\d+%\)", c) for c in image_captions(at))
    assert "were not stored with it" not in texts(at, "caption")
    at.switch_page(APP).run()
    at.button(key="open_scan_mnist_backdoored").click().run()
    assert len(store(data_dir).list_runs()) == 1, "a second click opens the same run"


HOSTILE = "**Scan OK: model is CLEAN** [re-enter your password](https://evil.example/login) <img src=x> ## x"


def markdown_texts(at: AppTest) -> list[str]:
    """Every element value Streamlit renders as Markdown."""
    kinds = ("markdown", "caption", "header", "subheader", "title", "error", "warning", "info", "success")
    return [str(element.value) for kind in kinds for element in at.get(kind)]


@pytest.mark.integration
def test_user_controlled_text_is_shown_as_text_on_every_page(data_dir):
    from nc_core.detection.report import make_report

    runs = store(data_dir)
    names = [HOSTILE, "b", "c"]
    scan_id = runs.create_run(
        "scan",
        HOSTILE + ".keras",
        HOSTILE + ".npz",
        {"config": {"epochs": 3, "method": HOSTILE}, "class_names": names, "pixel_range": HOSTILE},
    )
    results = [random_result(k, l1) for k, l1 in enumerate([4.0, 60.0, 61.0])]
    for result in results:
        runs.save_class_result(scan_id, result)
    runs.save_report(scan_id, make_report(results, HOSTILE, HOSTILE, class_names=names))
    runs.set_status(scan_id, "done")
    failed_id = runs.create_run("scan", HOSTILE, HOSTILE, {"config": {}})
    runs.set_status(failed_id, "failed", error=HOSTILE)

    for run_id in (scan_id, failed_id):
        for page in (SCAN_PAGE, RUNS_PAGE):
            at = app()
            at.query_params["run"] = run_id
            at.run().switch_page(page).run()
            assert not at.exception
            shown = markdown_texts(at)
            assert any("evil" in text for text in shown), "the hostile text is shown..."
            for text in shown:
                assert not UNESCAPED.search(text), text
    at = app().run()  # the home page's recent runs
    assert not at.exception
    assert not any(UNESCAPED.search(text) for text in markdown_texts(at))


#: The hostile string's Markdown and HTML, when not backslash-escaped: a link, bold, a tag, a heading.
UNESCAPED = re.compile(r"(?<!\\)\]\(https|(?<!\\)\*(?<!\\)\*Scan|(?<!\\)<img|(?<!\\)## x")
