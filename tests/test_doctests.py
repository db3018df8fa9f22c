"""The examples in docstrings that can run on their own are run, so they stay true.

Modules listed here hold only examples that run as written. Others still hold illustrations that
name a model or data set they do not build (``report = scan(inputs.classifier, inputs.data)``);
a module joins this list once its examples run (CONTRIBUTING.md).
"""

from __future__ import annotations

import doctest
import importlib

import pytest

DOCTESTED = [
    "dashboard.text",
    "nc_core._lazy",
    "nc_core.files",
    "nc_core.audit.metrics",
    "nc_core.detection.detect",
    "nc_core.detection.fusion",
    "nc_core.detection.margin",
    "nc_core.detection.shape",
    "nc_core.loading.data.archives",
    "nc_core.loading.models.keras_errors",
    "nc_core.loading.models.vetting",
    "nc_core.optimise",
    "nc_core.optimise.config",
    "nc_core.optimise.epoch",
    "nc_core.optimise.results",
    "nc_core.repair.config",
    "nc_core.reports",
    "nc_core.reports.figures",
    "nc_core.runs.spec",
    "nc_core.runs.status",
    "nc_core.runs.store",
    "nc_core.runtime",
    "nc_core.schema",
]


@pytest.mark.parametrize("name", DOCTESTED)
def test_the_docstring_examples_are_true(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no example to run"
    assert result.failed == 0
