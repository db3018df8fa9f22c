"""nc_core: find backdoors in Keras image classifiers by reverse-engineering their triggers.

The public API, imported lazily so that ``python -m nc_core --help`` and the legacy engine's
graph-mode child start without loading Keras first:

    >>> from nc_core import load_inputs, scan, CleanseConfig
    >>> inputs = load_inputs("sample_models/mnist_backdoored.keras", "sample_models/mnist_data.npz")
    >>> report = scan(inputs.classifier, inputs.data, config=CleanseConfig())
    >>> report.verdict, report.flagged, report.anomaly_index > 2
    ('backdoored', [7], True)

``nc_core.repair`` and ``nc_core.audit`` are subpackages with their own public names
(``from nc_core.repair import repair``); a name of this package never shares its name with a
module or subpackage, which would shadow it once imported (tests/test_public_api.py).
"""

from nc_core._lazy import lazy_getattr

_EXPORTS = {
    "CleanseConfig": "nc_core.optimise.config",
    "TriggerResult": "nc_core.optimise.results",
    "Trigger": "nc_core.optimise.trigger",
    "KerasEngine": "nc_core.optimise.engine",
    "LegacyEngine": "nc_core.optimise.legacy",
    "anomaly_indices": "nc_core.detection.detect",
    "detect": "nc_core.detection.detect",
    "DetectionRule": "nc_core.detection.detect",
    "compactness": "nc_core.detection.shape",
    "boundary": "nc_core.detection.shape",
    "ScanReport": "nc_core.detection.report",
    "scan": "nc_core.detection.scan",
    "reverse_engineer": "nc_core.optimise.runner",
    "attack_success_rate": "nc_core.optimise.runner",
    "load_inputs": "nc_core.loading.inputs",
    "prepare": "nc_core.loading.inputs",
    "ScanInputs": "nc_core.loading.inputs",
    "load_model": "nc_core.loading.models",
    "load_data": "nc_core.loading.data",
    "Dataset": "nc_core.loading.data",
    "PixelRange": "nc_core.loading.pixels",
    "CancelToken": "nc_core.optimise.progress",
    "ProgressEvent": "nc_core.optimise.progress",
    "RayCluster": "nc_core.optimise.cluster",
    "NCError": "nc_core.errors",
    "RunStore": "nc_core.runs.store",
    "RepairConfig": "nc_core.repair.config",
    "rescan": "nc_core.repair.core",
    "read_manifest": "nc_core.audit.manifest",
    "run_audit": "nc_core.audit.runner",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
