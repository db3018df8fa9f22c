"""Streamlit code the dashboard's pages share; the pages themselves stay thin.

    page.py        start every page: page config, password gate, reviewer mode
    selection.py   the model + data the user chose (session state) and the shipped samples
    uploads.py     files users bring, saved by content hash so loads cache and workers copy them
    loading.py     cached loads of a selection, a run's own inputs and triggered samples, the store
    settings.py    the Neural Cleanse settings form (one for the reverse and scan pages)
    run_page.py    what the reverse and scan pages share: the form, the live run, its result
    live.py        live progress of a background run: bar, ETA, curves, cancel, classes so far
    results.py     one result view for every run: verdict, both methods' charts, table, triggers,
                   triggered samples, comparison, HTML report
    repair.py      the repair form under a scan's result, and a repair run's figures
    audit.py       the Audit page's upload form and table
    runs.py        the runs table, and starting a run from the current selection
    text.py        untrusted text shown as text, class labels, durations

Figures come from :mod:`nc_core.reports.figures`; every number shown comes from the library.
Nothing here imports TensorFlow at import time, so the home page shows within seconds; nc_core
modules that load Keras are imported inside the functions that need them.
"""
