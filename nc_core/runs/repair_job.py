"""A repair as a background run of the run store: started from a finished scan, survives the page.

The repair run copies the scan's model and data and its report (with the masks), so it stands on
its own even if the scan is deleted later. Its worker repairs, saves ``repaired.keras`` and
``repair.json``, then re-scans the repaired model with the scan's settings; the re-scan's classes
and report are the run's own, so the dashboard shows them like any scan's.

    >>> run_id = create_repair_run(store, scan_run_id, RepairConfig())  # then start_worker(store, run_id)
    >>> store.get(run_id).status, sorted(path.name for path in (store.run_dir(run_id) / "inputs").iterdir())
    ('queued', ['data.npz', 'model.keras', 'scan_report.json'])

:func:`nc_core.runs.worker.submit_repair` does both: this module prepares and runs, the worker
module launches.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from nc_core.errors import InvalidParameterError
from nc_core.optimise.progress import CancelToken
from nc_core.repair.config import RepairConfig
from nc_core.runs.spec import RepairSpec, ScanSpec
from nc_core.runs.store import REPAIRED_MODEL, RunStore

#: The share of a repair run's progress bar the repair takes; the re-scan takes the rest.
REPAIR_SHARE = 0.25
SCAN_REPORT = "scan_report.json"


def create_repair_run(
    store: RunStore,
    scan_id: str,
    config: RepairConfig = RepairConfig(),
    force: bool = False,
    trigger_card: dict | None = None,
) -> str:
    """A repair run of the model a finished scan run looked at, ready for a worker; its id.

    Refuses (with a sentence) a run that is not a finished scan, or a scan that flagged nothing
    unless ``force``. ``trigger_card`` (a model card's JSON) names the real trigger to measure.
    """
    from nc_core.repair.triggers import triggers_to_remove

    scan = store.get(scan_id)
    report = store.load_report(scan_id) if scan.kind == "scan" and scan.status == "done" else None
    if report is None:
        raise InvalidParameterError("Only a finished scan can be repaired.")
    triggers_to_remove(report, force)
    config.validate(num_samples=10**9, num_classes=len(report.rows))
    source = store.run_dir(scan_id) / "inputs"
    scan_spec = ScanSpec.from_settings(scan.settings)
    model_file, data_file = scan_spec.model_file, scan_spec.data_file
    if not model_file or not data_file or not (source / model_file).exists() or not (source / data_file).exists():
        raise InvalidParameterError(
            "This scan's model and data are not stored with it (an imported run?): "
            "repair it from the command line with the model and data files."
        )
    spec = RepairSpec(scan_spec, scan_id, config, force, trigger_card)
    files = {model_file: source / model_file} | (
        {data_file: source / data_file} if (source / data_file).is_file() else {}
    )
    run_id = store.create_run("repair", scan.model, scan.data, spec.to_settings(), files)
    inputs = store.run_dir(run_id) / "inputs"
    if (source / data_file).is_dir():
        shutil.copytree(source / data_file, inputs / data_file)
    (inputs / SCAN_REPORT).write_text(report.to_json())
    return run_id


def run_repair_job(store: RunStore, record, cancel: CancelToken, recorder: Callable[[float], Callable]) -> str:
    """The worker's side: repair, save the model and figures, re-scan; returns the final status."""
    from nc_core.detection.report import ScanReport
    from nc_core.loading.inputs import load_inputs
    from nc_core.loading.models import load_model
    from nc_core.repair.core import repair, rescan
    from nc_core.repair.triggers import trigger_from_card

    spec, folder = RepairSpec.from_settings(record.settings), store.run_dir(record.id)
    inputs_dir = folder / "inputs"
    report = ScanReport.from_json((inputs_dir / SCAN_REPORT).read_text())
    model_path = inputs_dir / spec.scan.model_file
    inputs = load_inputs(model_path, inputs_dir / spec.scan.data_file, spec.scan.pixel_range, spec.scan.max_samples)
    card = spec.trigger_card
    known = trigger_from_card(card, inputs.info.input_shape) if card else None
    started = time.time()

    def progress(fraction: float, message: str) -> None:
        store.update_progress(
            record.id,
            {
                "kind": "repair",
                "stage": "repair",
                "fraction": REPAIR_SHARE * fraction,
                "message": message,
                "elapsed": time.time() - started,
            },
        )

    progress(0.0, "fine-tuning starts")
    result = repair(
        load_model(model_path),
        inputs.data,
        report,
        spec.repair,
        known,
        spec.force,
        inputs.info.outputs_probabilities,
        on_progress=progress,
        cancel=cancel,
    )
    _save_model(result.model, folder / REPAIRED_MODEL)
    store.save_repair(record.id, result.to_dict())
    new = rescan(
        result,
        inputs.data,
        report,
        inputs.info.outputs_probabilities,
        on_event=recorder(REPAIR_SHARE),
        cancel=cancel,
        model_name=f"{record.model} (repaired)",
        on_result=lambda r: store.save_class_result(record.id, r),
        on_samples=lambda samples: store.save_samples(record.id, samples),
    )
    new.data = record.data
    store.save_repair(record.id, result.to_dict())  # now with the re-scan's verdict
    store.save_report(record.id, new)
    return "cancelled" if new.cancelled else "done"


def _save_model(model, path: Path) -> None:
    """Write the model next to its final name, then rename: a reader never sees half a file."""
    partial = path.with_name(f".{path.stem}.partial.keras")
    model.save(partial)
    partial.replace(path)


def card_for_sample(samples_dir: Path, model_name: str) -> dict | None:
    """The model card of a shipped sample, when the scanned model is one (the dashboard measures
    its real trigger); None for anything else."""
    card = samples_dir / f"{Path(model_name).stem}.json"
    if Path(model_name).suffix != ".keras" or not card.is_file():
        return None
    try:
        payload = json.loads(card.read_text())
    except ValueError:
        return None
    return payload if payload.get("backdoored") and payload.get("model_file") == model_name else None
