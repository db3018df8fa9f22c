"""Runs that outlive a page: the store (SQLite and files), background worker processes, and run
bundles (export and import).

Modules: :mod:`.store` (``RunStore``: runs, their settings, live state and reports),
:mod:`.spec` (a run's settings as one typed value per job kind), :mod:`.worker` (a run's own
process, resumable, cancellable; it launches every kind), :mod:`.repair_job` (what a repair run
does in it) and :mod:`.bundle` (a finished run as one zip, and back).

    >>> from nc_core.runs.store import RunStore
    >>> runs = RunStore().list_runs()  # in $NC_DATA_DIR, else ./nc_data; newest first
    >>> runs[-1].kind, runs[-1].status, runs[-1].verdict
    ('scan', 'done', 'backdoored')
"""
