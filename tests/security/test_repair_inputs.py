"""A repair refuses triggers it cannot use and never keeps a model it ruined.

Each case goes through the real path: the CLI as a subprocess for what a batch job meets (its exit
code and what is left on disk), the library for the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nc_core.detection.report import make_report
from nc_core.errors import InvalidDataError
from nc_core.repair import RepairConfig, repair
from nc_core.repair.core import RepairResult
from nc_core.repair.evaluation import Figures
from tests.helpers.paths import ROOT, SAMPLES
from tests.helpers.results import sized_result

MODEL, DATA = SAMPLES / "mnist_backdoored.keras", SAMPLES / "mnist_data.npz"


def flagged_report(mask_of_3=None, mask_of_5=None):
    """A scan report of the MNIST sample flagging class 3 (and 5), with the masks given."""
    results = [sized_result(k, 60 + k, full=True, screen_l1=60 + k) for k in range(10)]
    results[3] = sized_result(3, 6, full=True, compact=True)
    results[5] = sized_result(5, 7, full=True, compact=True)
    report = make_report(results, "mnist_backdoored.keras", "mnist_data.npz", pixel_range="0-255")
    assert 3 in report.flagged
    if mask_of_3 is not None:
        report.results[3].mask = mask_of_3
    if mask_of_5 is not None:
        report.results[5].mask = mask_of_5
        report.flagged = sorted({*report.flagged, 5})
    return report


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nc_core", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.mark.integration
def test_a_report_whose_mask_is_nan_is_refused_and_no_model_is_written(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(flagged_report(mask_of_3=np.full((28, 28), np.nan, np.float32)).to_json(include_arrays=True))
    out = tmp_path / "fixed.keras"
    done = cli("repair", str(MODEL), str(DATA), "--report", str(report), "--out", str(out), "--no-rescan", "--quiet")
    assert done.returncode != 0
    assert "class 3 has a mask that is not finite" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_a_second_flagged_class_with_a_mask_of_another_size_is_refused(mnist_backdoored):
    from nc_core.loading.models import load_model

    report = flagged_report(mask_of_5=np.zeros((32, 32), np.float32))
    with pytest.raises(InvalidDataError, match="trigger of class 5 has a 32x32 mask"):
        repair(load_model(MODEL), mnist_backdoored.data, report, RepairConfig(epochs=1))


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"target": 999}, "sends inputs to class 999, but the model has classes 0 to 9"),
        ({"trigger.value": float("nan")}, "has a pattern that is not finite"),
    ],
)
@pytest.mark.integration
def test_a_trigger_card_with_nan_or_a_target_outside_the_model_is_refused(tmp_path, change, needle):
    card = json.loads((SAMPLES / "mnist_backdoored.json").read_text())
    card["trigger"].pop("pattern", None)
    for key, value in change.items():
        *parent, last = key.split(".")
        (card[parent[0]] if parent else card)[last] = value
    (tmp_path / "card.json").write_text(json.dumps(card))
    report = tmp_path / "report.json"
    report.write_text(flagged_report().to_json(include_arrays=True))
    out = tmp_path / "fixed.keras"
    done = cli(
        "repair",
        str(MODEL),
        str(DATA),
        "--report",
        str(report),
        "--out",
        str(out),
        "--no-rescan",
        "--quiet",
        "--trigger-card",
        str(tmp_path / "card.json"),
    )
    assert done.returncode != 0 and needle in done.stderr, done.stderr
    assert not out.exists()


@pytest.mark.integration
def test_a_repair_that_diverges_or_costs_too_much_accuracy_exits_non_zero(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(flagged_report().to_json(include_arrays=True))
    out = tmp_path / "fixed.keras"
    done = cli(
        "repair",
        str(MODEL),
        str(DATA),
        "--report",
        str(report),
        "--out",
        str(out),
        "--no-rescan",
        "--quiet",
        "--learning-rate",
        "1.0",
        "--epochs",
        "2",
        "--rounds",
        "1",
        "--max-accuracy-drop",
        "0.01",
    )
    assert done.returncode != 0, done.stdout
    if "diverged" in done.stderr:
        assert not out.exists(), "a model with non-finite weights is never written"
    else:
        assert "more than its budget of 1.0%" in done.stderr, done.stderr
        figures = json.loads(out.with_suffix(".json").read_text())
        assert figures["within_budget"] is False and figures["accuracy_drop"] > 0.01
        from nc_core.loading.models import load_model

        assert all(np.isfinite(w).all() for w in load_model(out).get_weights())


def test_the_budget_is_the_clean_accuracy_lost_on_held_out_samples():
    def outcome(before: float, after: float, budget: float) -> RepairResult:
        return RepairResult(
            None,
            "unlearning",
            [3],
            Figures(before),
            Figures(after),
            [],
            1.0,
            RepairConfig(max_accuracy_drop=budget).to_dict(),
            10,
            5,
            1.0,
        )

    assert outcome(0.98, 0.95, 0.05).within_budget
    assert not outcome(0.98, 0.90, 0.05).within_budget
    assert outcome(0.90, 0.95, 0.0).within_budget, "a repair that gained accuracy is within any budget"
    assert outcome(0.98, 0.97, 0.05).to_dict()["config"]["max_accuracy_drop"] == 0.05
