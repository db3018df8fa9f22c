"""Deciding: which classes are backdoor targets, from every class's recovered trigger.

Modules: :mod:`.shape` (how compact a mask is, and how long its edge), :mod:`.detect` (the
paper's anomaly index and the product's rule), :mod:`.screen` (where a scan spends its budget),
:mod:`.margin` (the max-margin detector), :mod:`.fusion` (one verdict over both methods),
:mod:`.scan` (``scan``: which classes to optimise and how long, then the rule),
:mod:`.samples` (triggered samples with the model's answers: the evidence a reviewer checks) and
:mod:`.report` (``ScanReport``: every figure computed once, and the verdict). The public names
are importable from :mod:`nc_core`.

A scan too short for its masks to settle says so; it never calls the model clean:

    >>> from nc_core import CleanseConfig, load_inputs, scan
    >>> clean = load_inputs("sample_models/mnist_clean.keras", "sample_models/mnist_data.npz")
    >>> report = scan(clean.classifier, clean.data, config=CleanseConfig(epochs=2))
    >>> report.verdict, report.rerun_hint
    ('inconclusive', 'Rerun with more epochs (e.g. 60) or a smaller learning rate.')
"""
