"""The command line contract: JSON on stdout, PNGs and result files, exit codes, one-line errors."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.paths import ROOT, sample_path

MODEL = sample_path("mnist_backdoored.keras")
DATA = sample_path("mnist_data.npz")


def nc(*args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "nc_core", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.integration
def test_scan_prints_the_json_contract_and_writes_its_folder(tmp_path):
    out = tmp_path / "scan"
    done = nc(
        "scan",
        MODEL,
        DATA,
        "--classes",
        "0,1,7",
        "--epochs",
        "4",
        "--format",
        "json",
        "--out",
        out,
        "--quiet",
        "--report",
        tmp_path / "report.html",
        "--margin-steps",
        "0",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {
        "model",
        "verdict",
        "anomaly_index",
        "flagged",
        "seconds",
        "classes",
        "score",
        "verdict_reason",
        "unconverged",
        "steps",
        "screened",
        "budget_scale",
        "max_boundary",
    } <= set(summary)
    assert summary["model"] == "mnist_backdoored.keras"
    assert summary["verdict"] == "inconclusive", "4 epochs cannot settle a mask (and the max-margin test is off)"
    assert list(summary["methods"]) == ["neural-cleanse"] and set(summary["suspects"]) <= {7}
    assert set(summary["unconverged"]) <= {0, 1, 7} and summary["unconverged"]
    assert [row["class"] for row in summary["classes"]] == [0, 1, 7]
    for row in summary["classes"]:
        assert {
            "class",
            "l1",
            "anomaly_index",
            "asr",
            "flagged",
            "score",
            "compactness",
            "converged",
            "steps",
            "full_schedule",
            "full_budget_l1",
            "boundary",
        } <= set(row)
        assert row["l1"] > 0 and 0 <= row["asr"] <= 1 and row["steps"] > 0 and row["boundary"] > 0
    assert summary["steps"] == sum(row["steps"] for row in summary["classes"])
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "classes" / "007_fusion.png").exists()
    with Image.open(out / "classes" / "007_fusion.png") as fusion:
        assert min(fusion.size) >= 256, "saved pictures are enlarged to be seen"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert ">Inconclusive<" in page and "mnist_backdoored.keras" in page


@pytest.mark.integration
def test_scan_on_a_local_ray_cluster_prints_the_json_contract():
    pytest.importorskip("ray")
    args = ["--classes", "0,1,7", "--epochs", "4", "--margin-steps", "0", "--format", "json", "--quiet"]
    done = nc("scan", MODEL, DATA, *args, "--ray", "local:2")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["device"] == "a local Ray cluster of 2 workers" and summary["backend"] == "tensorflow"
    assert [row["class"] for row in summary["classes"]] == [0, 1, 7]
    assert summary["verdict"] == "inconclusive" and all(row["l1"] > 0 for row in summary["classes"])
    assert "Traceback" not in done.stderr


@pytest.mark.integration
def test_reverse_writes_mask_pattern_fusion_and_result(tmp_path):
    done = nc(
        "reverse", MODEL, DATA, "--target", "3", "--epochs", "3", "--method", "plain", "--out", tmp_path, "--quiet"
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"mask.png", "pattern.png", "fusion.png", "result.json"}
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["target"] == 3 and result["method"] == "plain" and len(result["history"]) == 3
    assert np.asarray(result["mask"]).shape == (28, 28)


def _free_port() -> int:
    """A port that was free a moment ago: nothing listens there."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _bad_files(tmp_path):
    random_model = tmp_path / "random.keras"
    random_model.write_bytes(os.urandom(2048))
    wrong_shape = tmp_path / "wrong.npz"
    np.savez(wrong_shape, x=np.zeros((4, 32, 32, 3), np.uint8), y=np.zeros(4, np.int64))
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with zipfile.ZipFile(tmp_path / "slip.zip", "w") as z:
        z.writestr("../evil/a.png", b"x")
    return random_model, wrong_shape, notes


@pytest.mark.parametrize(
    "case,needle",
    [
        ("missing model", "does not exist"),
        ("random model", ""),
        ("not a model", ""),
        ("wrong shape", "28x28x1"),
        ("class out of range", "out of range"),
        ("zero epochs", "Epochs"),
        ("batch larger than data", "larger than"),
        ("zip slip", ""),
        ("negative edge bound", "--max-boundary"),
        ("audit with a ratio above 1", "--max-l1-ratio"),
        ("not a ray address", "is not a Ray address"),
        ("no ray cluster there", "Cannot reach the Ray cluster"),
    ],
)
@pytest.mark.integration
def test_bad_input_exits_2_with_one_line(tmp_path, case, needle):
    random_model, wrong_shape, notes = _bad_files(tmp_path)
    args = {
        "missing model": ("scan", tmp_path / "nope.keras", DATA),
        "random model": ("scan", random_model, DATA),
        "not a model": ("scan", notes, DATA),
        "wrong shape": ("scan", MODEL, wrong_shape),
        "class out of range": ("reverse", MODEL, DATA, "--target", "10", "--out", tmp_path / "o"),
        "zero epochs": ("scan", MODEL, DATA, "--epochs", "0"),
        "batch larger than data": ("scan", MODEL, DATA, "--batch-size", "100000"),
        "zip slip": ("scan", MODEL, tmp_path / "slip.zip"),
        "negative edge bound": ("scan", MODEL, DATA, "--max-boundary", "-1"),
        "audit with a ratio above 1": ("audit", tmp_path / "manifest.csv", "--max-l1-ratio", "2"),
        "not a ray address": ("scan", MODEL, DATA, "--ray", "head-node"),
        "no ray cluster there": ("scan", MODEL, DATA, "--ray", f"127.0.0.1:{_free_port()}"),
    }[case]
    done = nc(*args, timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert needle in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize("argv", [["scan", "m.keras", "d.npz", "--epochs", "abc"], [], ["scan"]])
def test_malformed_options_give_one_error_line(argv, capsys):
    from nc_core.cli import main

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


@pytest.mark.integration
def test_the_installed_command_works_from_any_folder(tmp_path):
    import shutil

    command = shutil.which("neural-cleanse", path=str(Path(sys.executable).parent))
    assert command, "install the package (pip install -e .) as the README's set-up line does"
    done = subprocess.run(
        [command, "scan", str(MODEL), str(DATA), "--classes", "0", "--epochs", "1", "--format", "json", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["classes"][0]["class"] == 0
    missing = subprocess.run(
        [command, "scan", "nowhere/model.keras", str(DATA)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert missing.returncode == 2 and "'nowhere/model.keras'" in missing.stderr


def test_schedule_flags_reach_the_config():
    from nc_core.cli import _config, build_parser

    args = build_parser().parse_args(["scan", "m.keras", "d.npz", "--screen-epochs", "4", "--probe-epochs", "1"])
    config = _config(args)
    assert (config.screen_epochs, config.probe_epochs) == (4, 1)
    assert _config(build_parser().parse_args(["scan", "m.keras", "d.npz"])).probe_epochs == 2


def test_a_negative_probe_is_one_clean_error(capfd):
    from nc_core.cli import main

    assert main(["scan", str(MODEL), str(DATA), "--probe-epochs", "-1"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Probe epochs" in err[0], err
