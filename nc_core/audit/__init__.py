"""Audit many models at once (issue 12, in progress): manifests and the labelled figures so far.

:mod:`.manifest` reads what to scan (CSV, JSON lines, or a folder of models with one data file);
:mod:`.metrics` scores verdicts against known labels (accuracy, false positives, ROC-AUC,
confusion). The Ray runner, the ``audit`` command and the dashboard page come next.

    >>> from nc_core.audit.manifest import read_manifest
"""
