"""Audit many models at once, on local cores or a Ray cluster, scored against known labels.

Layers: :mod:`.manifest` (what to scan: CSV, JSON lines, or a folder of models with one data
file), :mod:`.runner` (each model a Ray task running a normal scan run of the store; resume,
retries, the audit's record), :mod:`.metrics` (exact-target accuracy, false positives, ROC-AUC,
confusion) and :mod:`.background` (an audit started from the dashboard: an uploaded zip unpacked
safely, the driver detached).

An audit of the two MNIST twins (``manifest`` lists both, with their labels) on an embedded Ray
with a worker per core; three epochs a class find the backdoor, but are too few to vouch for the
clean twin:

    >>> from nc_core.audit import audit_settings, read_manifest, run_audit
    >>> result = run_audit(read_manifest(manifest), audit_settings(epochs=3), store)
    >>> [(row.model, row.label, row.verdict) for row in result.rows]
    [('mnist_backdoored.keras', 'backdoored', 'backdoored'), ('mnist_clean.keras', 'clean', 'inconclusive')]
"""

from nc_core._lazy import lazy_getattr

_EXPORTS = {
    "AuditEntry": "nc_core.audit.manifest",
    "read_manifest": "nc_core.audit.manifest",
    "AuditSettings": "nc_core.audit.runner",
    "AuditResult": "nc_core.audit.runner",
    "audit_settings": "nc_core.audit.runner",
    "run_audit": "nc_core.audit.runner",
    "load_audit": "nc_core.audit.runner",
    "list_audits": "nc_core.audit.runner",
    "audit_metrics": "nc_core.audit.metrics",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
