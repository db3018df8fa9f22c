"""Repair (nc_core.repair): real unlearning and pruning on the shipped MNIST twins, on a small budget.

The scans to repair come from the shipped finished-scan bundles (sample_models/*_scan.zip, made by
the same scanner), so the tests spend their time on the repair itself.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nc_core.errors import InvalidDataError, InvalidParameterError, RunCancelled
from nc_core.loading.models import load_model
from nc_core.optimise.progress import CancelToken
from nc_core.repair import (
    RepairConfig,
    RepairResult,
    RepairTrigger,
    repair,
    rescan,
    split_holdout,
    trigger_from_card,
    trigger_from_images,
    triggers_to_remove,
)
from nc_core.repair.triggers import grown
from nc_core.runs.store import RunStore
from tests.helpers.paths import ROOT, sample_path

FAST = RepairConfig(epochs=3, restarts=1, max_rounds=2)


def shipped_report(tmp_path_factory, name: str):
    store = RunStore(tmp_path_factory.mktemp(name))
    return store.load_report(store.import_bundle(sample_path(f"{name}_scan.zip").read_bytes()))


@pytest.fixture(scope="module")
def backdoored_report(tmp_path_factory):
    return shipped_report(tmp_path_factory, "mnist_backdoored")


@pytest.fixture(scope="module")
def clean_report(tmp_path_factory):
    return shipped_report(tmp_path_factory, "mnist_clean")


@pytest.fixture(scope="module")
def card_trigger():
    return trigger_from_card(json.loads(sample_path("mnist_backdoored.json").read_text()), (28, 28, 1))


@pytest.fixture(scope="module")
def unlearned(mnist_backdoored, backdoored_report, card_trigger):
    model = load_model(sample_path("mnist_backdoored.keras"))
    return repair(
        model,
        mnist_backdoored.data,
        backdoored_report,
        FAST,
        known=card_trigger,
        outputs_probabilities=mnist_backdoored.info.outputs_probabilities,
    )


# --------------------------------------------------------------------------- pieces


def test_the_card_trigger_is_the_samples_checkerboard(card_trigger):
    assert card_trigger.target == 7 and card_trigger.mask.sum() == 9
    assert card_trigger.pattern[1:4, 1:4, 0].tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]


def test_a_card_without_a_patch_trigger_is_refused():
    with pytest.raises(InvalidDataError, match="no patch trigger"):
        trigger_from_card({"target": 1}, (28, 28, 1))
    with pytest.raises(InvalidDataError, match="does not fit"):
        trigger_from_card({"target": 1, "trigger": {"kind": "patch", "size": 4, "row": 26, "col": 0}}, (28, 28, 1))


def test_a_trigger_from_images(tmp_path):
    from PIL import Image

    mask = np.zeros((8, 8), np.uint8)
    mask[6:, 6:] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "p.png")
    trigger = trigger_from_images(tmp_path / "m.png", tmp_path / "p.png", 2, (8, 8, 3))
    assert trigger.mask.sum() == 4 and trigger.pattern.shape == (8, 8, 3) and trigger.target == 2
    with pytest.raises(InvalidDataError, match="the model takes 28x28"):
        trigger_from_images(tmp_path / "m.png", tmp_path / "p.png", 2, (28, 28, 1))


def test_a_grown_trigger_covers_the_neighbourhood_in_the_patterns_colour():
    mask = np.zeros((5, 5), np.float32)
    mask[2, 2] = 1
    pattern = np.zeros((5, 5, 1), np.float32)
    pattern[2, 2] = 0.8
    bigger = grown(RepairTrigger(0, mask, pattern))
    assert bigger.mask.sum() == 9 and np.allclose(bigger.pattern[1:4, 1:4], 0.8)
    assert bigger.mask[0].sum() == 0 and np.allclose(bigger.pattern[0], 0)


def test_the_split_holds_out_a_share_of_every_class():
    y = np.repeat(np.arange(4), [10, 10, 5, 3])
    tune, held = split_holdout(y, 0.3, seed=0)
    assert sorted(np.concatenate([tune, held]).tolist()) == list(range(len(y)))
    assert [int((y[held] == c).sum()) for c in range(4)] == [3, 3, 2, 1]
    with pytest.raises(InvalidDataError, match="labelled"):
        split_holdout(np.array([0, 1, -1, 1, 0, 0]), 0.3)
    with pytest.raises(InvalidDataError, match="Class 1 has 2 sample"):
        split_holdout(np.array([0, 0, 0, 1, 1]), 0.3)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"method": "magic"}, "repair method"),
        ({"epochs": 0}, "Repair epochs"),
        ({"stamp_share": 1.0}, "stamped"),
        ({"holdout_share": 0}, "held-out"),
        ({"batch_size": 5000}, "batch size"),
        ({"learning_rate": -1}, "learning rate"),
    ],
)
def test_settings_that_cannot_run_are_refused(change, message):
    with pytest.raises(InvalidParameterError, match=message):
        RepairConfig(**change).validate(num_samples=1000, num_classes=10)


def test_a_clean_verdict_is_repaired_only_when_forced(clean_report):
    assert clean_report.verdict == "clean"
    with pytest.raises(InvalidParameterError, match="verdict is clean.*--force"):
        triggers_to_remove(clean_report)
    (smallest,) = triggers_to_remove(clean_report, force=True)
    assert smallest.target == min(clean_report.rows, key=lambda r: r.judged_l1).class_id


# --------------------------------------------------------------------------- the real thing


@pytest.mark.integration
def test_unlearning_removes_the_real_backdoor_and_keeps_the_accuracy(unlearned):
    before, after = unlearned.before, unlearned.after
    assert before.known_asr >= 0.95 and after.known_asr <= 0.05
    assert before.reversed_asr[7] >= 0.95 and after.reversed_asr[7] <= 0.05
    assert after.clean_accuracy >= before.clean_accuracy - 0.02
    assert unlearned.samples_held_out == 300 and unlearned.samples_tuned == 700
    assert [r.round for r in unlearned.rounds if r.removed][0] == 0
    assert [row["figure"] for row in unlearned.table()] == [
        "clean accuracy",
        "attack success, reversed trigger of class 7",
        "attack success, real trigger (model card)",
    ]


@pytest.mark.integration
def test_the_result_round_trips_through_json(unlearned):
    again = RepairResult.from_dict(json.loads(json.dumps(unlearned.to_dict())))
    assert again.table() == unlearned.table() and again.rounds == unlearned.rounds


def test_the_original_model_is_left_untouched(mnist_backdoored, backdoored_report):
    model = load_model(sample_path("mnist_backdoored.keras"))
    weights = [w.copy() for w in model.get_weights()]
    repair(
        model,
        mnist_backdoored.data,
        backdoored_report,
        FAST.replace(max_rounds=1, restarts=0, epochs=1),
        outputs_probabilities=mnist_backdoored.info.outputs_probabilities,
    )
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))


def test_a_forced_repair_of_the_clean_twin_leaves_it_as_it_was(mnist_clean, clean_report):
    model = load_model(sample_path("mnist_clean.keras"))
    result = repair(
        model,
        mnist_clean.data,
        clean_report,
        FAST,
        force=True,
        outputs_probabilities=mnist_clean.info.outputs_probabilities,
    )
    assert not any(r.removed for r in result.rounds)  # its smallest mask does not stand out
    assert abs(result.after.clean_accuracy - result.before.clean_accuracy) <= 0.01
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), result.model.get_weights()))


def test_pruning_silences_the_reversed_trigger(mnist_backdoored, backdoored_report):
    model = load_model(sample_path("mnist_backdoored.keras"))
    result = repair(
        model,
        mnist_backdoored.data,
        backdoored_report,
        RepairConfig(method="pruning", restarts=0, max_rounds=1),
        outputs_probabilities=mnist_backdoored.info.outputs_probabilities,
    )
    assert result.pruned_units and result.after.reversed_asr[7] < result.before.reversed_asr[7] - 0.5
    assert result.after.clean_accuracy >= result.before.clean_accuracy - 0.05


def test_a_cancelled_repair_stops(mnist_backdoored, backdoored_report):
    token = CancelToken()
    token.cancel()
    with pytest.raises(RunCancelled):
        repair(
            load_model(sample_path("mnist_backdoored.keras")),
            mnist_backdoored.data,
            backdoored_report,
            FAST.replace(restarts=0),
            cancel=token,
        )


def test_a_report_of_other_images_is_refused(mnist_backdoored, tmp_path_factory):
    signs = shipped_report(tmp_path_factory, "signs_backdoored")
    with pytest.raises(InvalidDataError, match="another model or data"):
        repair(load_model(sample_path("mnist_backdoored.keras")), mnist_backdoored.data, signs, FAST)


@pytest.mark.slow
def test_the_repaired_model_rescans_clean(unlearned, mnist_backdoored, backdoored_report):
    report = rescan(unlearned, mnist_backdoored.data, backdoored_report, mnist_backdoored.info.outputs_probabilities)
    assert report.verdict == "clean" and unlearned.rescan.verdict == "clean"


# --------------------------------------------------------------------------- command line


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "nc_core", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def exported_report(backdoored_report, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.json"
    path.write_text(backdoored_report.to_json())
    return path


@pytest.mark.integration
def test_the_cli_writes_a_repaired_model_the_safe_loader_reads(exported_report, tmp_path):
    out = tmp_path / "fixed.keras"
    done = _cli(
        "repair",
        str(sample_path("mnist_backdoored.keras")),
        str(sample_path("mnist_data.npz")),
        "--report",
        str(exported_report),
        "--out",
        str(out),
        "--rounds",
        "2",
        "--no-rescan",
        "--format",
        "json",
        "--trigger-card",
        str(sample_path("mnist_backdoored.json")),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["after"]["known_asr"] <= 0.05 and figures["targets"] == [7]
    assert json.loads(out.with_suffix(".json").read_text()) == figures
    assert load_model(out).count_params() == load_model(sample_path("mnist_backdoored.keras")).count_params()


@pytest.mark.integration
def test_the_cli_reads_a_run_from_the_store(backdoored_report, tmp_path):
    store = RunStore(tmp_path / "nc_data")
    run_id = store.import_bundle(sample_path("mnist_clean_scan.zip").read_bytes())
    done = _cli(
        "repair",
        str(sample_path("mnist_clean.keras")),
        str(sample_path("mnist_data.npz")),
        "--run",
        run_id,
        "--out",
        str(tmp_path / "x.keras"),
        env={"NC_DATA_DIR": str(tmp_path / "nc_data")},
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: The scan's verdict is clean: there is no backdoor to remove. Force the repair (--force) to unlearn "
        "the class with the smallest mask anyway."
    ]
    assert not (tmp_path / "x.keras").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "fixed.h5"], "--out must name a .keras file"),
        (
            ["--out", "f.keras", "--trigger-mask", "m.png"],
            "needs --trigger-mask, --trigger-pattern and --trigger-target",
        ),
        (["--out", "f.keras", "--epochs", "0"], "Repair epochs must be between 1 and 1000"),
    ],
)
@pytest.mark.integration
def test_the_cli_refuses_bad_settings_with_one_line(exported_report, tmp_path, extra, message):
    extra = [str(tmp_path / e) if e.endswith((".h5", ".keras", ".png")) else e for e in extra]
    done = _cli(
        "repair",
        str(sample_path("mnist_backdoored.keras")),
        str(sample_path("mnist_data.npz")),
        "--report",
        str(exported_report),
        *extra,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
