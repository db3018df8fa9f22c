"""A finished scan of every shipped model, as the run bundle the home page opens in one click."""

from __future__ import annotations

import sys
from pathlib import Path

from .writing import SAMPLE_NAMES

REPOSITORY = Path(__file__).resolve().parents[2]


def write_scan_bundles(out: Path) -> None:
    """A finished scan of every shipped model (product defaults) as a run bundle, ``<name>_scan.zip``.

    The home page opens these with one click, so a speaker can show a result at once while a live
    run goes on in the background. The scans are real: the same call the CLI makes.
    """
    import tempfile

    sys.path.insert(0, str(REPOSITORY))  # the repository's nc_core, installed or not
    from nc_core.detection.scan import scan
    from nc_core.loading.inputs import load_inputs
    from nc_core.runs.spec import ScanSpec
    from nc_core.runs.store import RunStore

    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(folder)
        for name in SAMPLE_NAMES:
            model, data = out / f"{name}.keras", out / f"{name.split('_')[0]}_data.npz"
            if not (model.is_file() and data.is_file()):
                continue
            inputs = load_inputs(model, data)
            spec = ScanSpec(
                pixel_range=inputs.data.pixel_range.label,
                class_names=tuple(inputs.data.class_names or ()),
                clean_accuracy=inputs.clean_accuracy,
                model_file=model.name,
                data_file=data.name,
            )
            run_id = store.create_run("scan", model.name, data.name, spec.to_settings())
            report = scan(
                inputs.classifier,
                inputs.data,
                model_name=model.name,
                on_result=lambda result: store.save_class_result(run_id, result),  # noqa: B023 (called within this iteration)
                on_margin=lambda margin: store.save_margin(run_id, margin),  # noqa: B023 (called within this iteration)
                on_samples=lambda samples: store.save_samples(run_id, samples),  # noqa: B023 (called within this iteration)
            )
            report.data = data.name
            store.save_report(run_id, report)
            store.set_status(run_id, "done")
            (out / f"{name}_scan.zip").write_bytes(store.export_bundle(run_id))
            print(f"[{name}] scan: {report.verdict} {report.flagged} in {report.seconds:.0f} s", flush=True)
