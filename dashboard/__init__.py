"""Streamlit code the dashboard's pages share; the pages themselves stay thin.

    page.py        start every page: page config, password gate, reviewer mode
    selection.py   the model + data the user chose (session state) and the shipped samples
    uploads.py     files users bring, saved by content hash so loads cache and workers copy them
    loading.py     cached loads of a selection, a run's own inputs, and the run store
    settings.py    the Neural Cleanse settings form (one for the reverse and scan pages)
    live.py        live progress of a background run: bar, ETA, curves, cancel
    charts.py      Plotly figures: curves, L1 per class with median and threshold, balance
    results.py     one result view for every run: verdict, table, trigger grids, samples
    runs.py        the runs table, and starting a run from the current selection

Nothing here imports TensorFlow at import time, so the home page shows within seconds; nc_core
modules that load Keras are imported inside the functions that need them.
"""
