"""Every docstring example runs, so it stays true (CONTRIBUTING.md, "Test").

Examples of the modules in ``DOCTESTED`` build what they use and run in the quick suite. Those in
``DOCTESTED_WITH_MODELS`` read like a user's session that has loaded a model and scanned it: they
use the names of ``tests/helpers/doctest_namespace.py`` (``inputs``, ``classifier``, ``report``,
``store``, ...), real objects made once per session from the shipped MNIST sample, and they load
models, start worker processes and Ray, so they run as ``integration`` tests. Both run from the
repository's root (examples name ``sample_models/...``), with ``$NC_DATA_DIR`` in a temporary
folder. A module with examples is in one of the two lists.
"""

from __future__ import annotations

import doctest
import importlib
import re

import pytest

from tests.helpers.paths import ROOT

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

DOCTESTED = [
    "dashboard.text",
    "nc_core._lazy",
    "nc_core.backend",
    "nc_core.audit.metrics",
    "nc_core.detection.detect",
    "nc_core.detection.fusion",
    "nc_core.detection.probe",
    "nc_core.detection.shape",
    "nc_core.errors",
    "nc_core.files",
    "nc_core.loading.data",
    "nc_core.loading.data.archives",
    "nc_core.loading.data.class_folders",
    "nc_core.loading.data.dataset",
    "nc_core.loading.data.images",
    "nc_core.loading.data.npz",
    "nc_core.loading.limits",
    "nc_core.loading.models.keras_errors",
    "nc_core.loading.models.vetting",
    "nc_core.loading.pixels",
    "nc_core.optimise",
    "nc_core.optimise.adam",
    "nc_core.optimise.cluster",
    "nc_core.optimise.config",
    "nc_core.optimise.epoch",
    "nc_core.optimise.masks",
    "nc_core.optimise.progress",
    "nc_core.optimise.results",
    "nc_core.optimise.steps",
    "nc_core.optimise.threads",
    "nc_core.repair.config",
    "nc_core.repair.triggers",
    "nc_core.reports",
    "nc_core.reports.columns",
    "nc_core.reports.figures",
    "nc_core.runs.bundle",
    "nc_core.runs.spec",
    "nc_core.runs.status",
    "nc_core.runs.store",
    "nc_core.runtime",
    "nc_core.schema",
]

DOCTESTED_WITH_MODELS = [
    "dashboard.loading",
    "nc_core",
    "nc_core.audit",
    "nc_core.audit.background",
    "nc_core.audit.manifest",
    "nc_core.audit.runner",
    "nc_core.detection",
    "nc_core.detection.margin",
    "nc_core.detection.report",
    "nc_core.detection.samples",
    "nc_core.detection.scan",
    "nc_core.detection.screen",
    "nc_core.loading",
    "nc_core.loading.data.for_model",
    "nc_core.loading.inputs",
    "nc_core.loading.models",
    "nc_core.loading.models.footprint",
    "nc_core.loading.models.inspection",
    "nc_core.loading.models.load",
    "nc_core.loading.models.prediction",
    "nc_core.optimise.batched",
    "nc_core.optimise.engine",
    "nc_core.optimise.legacy",
    "nc_core.optimise.ray_runner",
    "nc_core.optimise.runner",
    "nc_core.optimise.schedule",
    "nc_core.optimise.trigger",
    "nc_core.repair",
    "nc_core.repair.blend",
    "nc_core.repair.core",
    "nc_core.repair.evaluation",
    "nc_core.repair.pruning",
    "nc_core.repair.unlearning",
    "nc_core.reports.html_report",
    "nc_core.reports.images",
    "nc_core.runs",
    "nc_core.runs.repair_job",
    "nc_core.runs.worker",
]


def run_examples(name: str, namespace: dict | None = None) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs=namespace, optionflags=OPTIONS, verbose=False)
    assert result.attempted > 0, f"{name} has no example to run"
    assert result.failed == 0, f"{result.failed} of {name}'s examples failed (printed above)"


@pytest.mark.parametrize("name", DOCTESTED)
def test_the_docstring_examples_are_true(name, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NC_DATA_DIR", str(tmp_path / "nc_data"))
    run_examples(name)


@pytest.fixture(scope="session")
def namespace(tmp_path_factory) -> dict:
    from tests.helpers.doctest_namespace import build

    return build(tmp_path_factory.mktemp("doctest"))


@pytest.mark.integration
@pytest.mark.parametrize("name", DOCTESTED_WITH_MODELS)
def test_the_docstring_examples_on_real_models_are_true(name, namespace, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NC_DATA_DIR", str(namespace["store"].root))
    run_examples(name, namespace)


def test_every_module_with_examples_is_in_one_list():
    """Read from the files, not imported: a new module's examples cannot go unrun unnoticed."""
    with_examples = set()
    for path in [*ROOT.glob("nc_core/**/*.py"), *ROOT.glob("dashboard/**/*.py")]:
        if path.name != "__main__.py" and re.search(r"^\s*>>> ", path.read_text(), re.MULTILINE):
            parts = path.relative_to(ROOT).with_suffix("").parts
            with_examples.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    listed = DOCTESTED + DOCTESTED_WITH_MODELS
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert with_examples == set(listed)
