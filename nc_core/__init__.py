"""nc_core: find backdoors in Keras image classifiers by reverse-engineering their triggers.

The public API, imported lazily so that ``python -m nc_core --help`` and the legacy engine's
graph-mode child start without loading Keras first:

    >>> from nc_core import load_inputs, scan, CleanseConfig
    >>> inputs = load_inputs("sample_models/signs_backdoored.keras", "sample_models/signs_data.npz")
    >>> report = scan(inputs.classifier, inputs.data, config=CleanseConfig())
    >>> report.verdict, report.flagged, report.anomaly_index
"""
from nc_core._lazy import lazy_getattr

_EXPORTS = {
    "CleanseConfig": "nc_core.cleanse",
    "TriggerResult": "nc_core.cleanse",
    "Trigger": "nc_core.trigger",
    "KerasEngine": "nc_core.engine",
    "LegacyEngine": "nc_core.legacy",
    "anomaly_indices": "nc_core.detect",
    "detect": "nc_core.detect",
    "DetectionRule": "nc_core.detect",
    "compactness": "nc_core.shape",
    "boundary": "nc_core.shape",
    "ScanReport": "nc_core.report",
    "scan": "nc_core.scan",
    "reverse_engineer": "nc_core.scan",
    "attack_success_rate": "nc_core.scan",
    "load_inputs": "nc_core.inputs",
    "prepare": "nc_core.inputs",
    "ScanInputs": "nc_core.inputs",
    "load_model": "nc_core.models",
    "load_data": "nc_core.data",
    "Dataset": "nc_core.data",
    "PixelRange": "nc_core.pixels",
    "CancelToken": "nc_core.progress",
    "ProgressEvent": "nc_core.progress",
    "NCError": "nc_core.errors",
    "RepairConfig": "nc_core.repair.config",
    "repair": "nc_core.repair.core",
    "rescan": "nc_core.repair.core",
    "read_manifest": "nc_core.audit.manifest",
    "run_audit": "nc_core.audit.runner",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
