"""The names a docstring example may use without building them: real, small objects, made once.

An example reads like the session of a user who has already loaded a model and scanned it, as
scikit-learn's read like a session with ``X`` and ``y`` at hand. These are that user's objects,
each made from the shipped MNIST sample (``sample_models/``) as the line beside it says, so an
example copied into a session where they are made runs there too:

    inputs       load_inputs("sample_models/mnist_backdoored.keras", "sample_models/mnist_data.npz")
    classifier   inputs.classifier: the model, probabilities out (a digit classifier, 10 classes)
    data         inputs.data: the 1000 held-out digits, unit pixels, labelled, range "0-255"
    x_unit       data.x: the same images in [0, 1], as the engines take them
    model        load_model("sample_models/mnist_backdoored.keras"): the model a repair copies
    card         the sample's model card (sample_models/mnist_backdoored.json): the real trigger
    store        RunStore(folder): runs in a temporary folder, where $NC_DATA_DIR points
    scan_run_id  a finished scan run of the sample in ``store``, product settings, inputs kept
    record       store.get(scan_run_id)
    report       store.load_report(scan_run_id): verdict "backdoored", class 7 flagged
    results      report.results: every class's recovered trigger
    result       report.result_for(7): the backdoor's recovered trigger
    manifest     an audit manifest (CSV) of both MNIST twins, beside copies of them and their data
    out          an empty folder for the files an example writes

The scan run is the expensive part (about 10 s on 2 cores): it runs once per test session, in
this process, as a worker process runs a dashboard's scan (:func:`nc_core.runs.worker.execute`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nc_core.loading.inputs import ScanInputs
from nc_core.loading.models import load_model
from nc_core.optimise.config import CleanseConfig
from nc_core.runs.spec import ScanSpec
from nc_core.runs.store import RunStore
from nc_core.runs.worker import execute
from tests.helpers.paths import SAMPLES
from tests.helpers.samples import load_sample

MODEL = SAMPLES / "mnist_backdoored.keras"
DATA = SAMPLES / "mnist_data.npz"
MANIFEST = """model,data,label,targets
mnist_backdoored.keras,mnist_data.npz,backdoored,7
mnist_clean.keras,mnist_data.npz,clean,
"""


def build(folder: Path) -> dict:
    """The namespace, its files under ``folder`` (the store in ``folder / "nc_data"``)."""
    inputs = load_sample("mnist_backdoored")
    store = RunStore(folder / "nc_data")
    scan_run_id = _finished_scan(store, inputs)
    report = store.load_report(scan_run_id)
    out = folder / "out"
    out.mkdir()
    return {
        "inputs": inputs,
        "classifier": inputs.classifier,
        "data": inputs.data,
        "x_unit": inputs.data.x,
        "model": load_model(MODEL),
        "card": json.loads((SAMPLES / "mnist_backdoored.json").read_text()),
        "store": store,
        "scan_run_id": scan_run_id,
        "record": store.get(scan_run_id),
        "report": report,
        "results": report.results,
        "result": report.result_for(7),
        "manifest": _manifest(folder / "zoo"),
        "out": out,
    }


def _finished_scan(store: RunStore, inputs: ScanInputs) -> str:
    """What the dashboard's Scan button does (``dashboard.runs.start_run``), its worker run here."""
    spec = ScanSpec(
        config=CleanseConfig(),
        pixel_range=inputs.data.pixel_range.label,
        class_names=tuple(inputs.data.class_names or ()),
        clean_accuracy=inputs.clean_accuracy,
        model_file="model.keras",
        data_file="data.npz",
    )
    files = {"model.keras": MODEL, "data.npz": DATA}
    run_id = store.create_run("scan", MODEL.name, DATA.name, spec.to_settings(), files)
    status = execute(store, run_id)
    assert status == "done", f"the namespace's scan run ended {status}: {store.get(run_id).error}"
    return run_id


def _manifest(folder: Path) -> Path:
    """A manifest and the files it names, in a folder of their own (an audit reads inside it only)."""
    folder.mkdir()
    for name in ("mnist_backdoored.keras", "mnist_clean.keras", "mnist_data.npz"):
        shutil.copyfile(SAMPLES / name, folder / name)
    path = folder / "manifest.csv"
    path.write_text(MANIFEST)
    return path
