"""Hostile and broken inputs through the command line: exit 2, one ``error: `` line, nothing written.

The loaders' own tests (tests/loading/: test_models.py, test_data.py) check what each refusal
raises; here the point is what a user of ``python -m nc_core scan`` sees. Most cases call
:func:`nc_core.cli.main` in this process (a CLI process costs about 10 s of TensorFlow import);
the ones where running code or writing a file would be a breach also go through a real
``python -m nc_core`` process. Every case runs from an empty working directory, which must still
be empty afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from nc_core.cli import EXIT_BAD_INPUT, main
from tests.helpers.paths import ROOT, sample_path
from tests.helpers.tiny_models import SHAPE, image_model
from tests.helpers.user_files import EvilPickle, image_bytes, png_header_and_rows, write_npz, write_zip

MODEL = sample_path("mnist_backdoored.keras")
DATA = sample_path("mnist_data.npz")
MNIST_SAMPLES = 1000


def _saved(model: keras.Model, path):
    model.save(path)
    return path


def _two_inputs(path):
    a, b = keras.Input(SHAPE), keras.Input(SHAPE)
    joined = keras.layers.Flatten()(keras.layers.Concatenate()([a, b]))
    return _saved(keras.Model([a, b], keras.layers.Dense(3, activation="softmax")(joined)), path)


def _flat_input(path):
    inputs = keras.Input((16,))
    return _saved(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs)), path)


def _grey_digits(n: int = 20) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _pngs(*names: str) -> dict[str, bytes]:
    png = image_bytes(40, size=(28, 28), mode="L")
    return {name: png for name in names}


def _zip_bomb(path):
    """Two real classes plus one member of 4 MB of zeros (compressed about 1000 to 1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in _pngs("a/1.png", "b/2.png").items():
            archive.writestr(name, content)
        with archive.open("b/zeros.png", "w") as member:
            for _ in range(4):
                member.write(bytes(1024**2))
    return path


def _object_npz(path):
    EvilPickle.marker = str(path.parent / "unpickled")
    np.savez(path, x=np.array([EvilPickle()], dtype=object), y=np.array([0]))
    return path


# Each case: the arguments after ``python -m nc_core`` (built in a fresh folder ``tmp``, with the
# session's ``model_files``) and a part of the one error line it must print.
CASES = {
    # models
    "lambda-keras": (
        lambda tmp, f: ["scan", f["lambda.keras"], DATA],
        "The model holds Python code (a Lambda layer) that is refused for safety",
    ),
    "lambda-h5": (
        lambda tmp, f: ["scan", f["lambda.h5"], DATA],
        "The model holds Python code (a Lambda layer) that is refused for safety",
    ),
    "custom-layer-keras": (
        lambda tmp, f: ["scan", f["custom.keras"], DATA],
        "The model uses a custom layer or function 'Doubler' that the scanner does not know",
    ),
    "custom-layer-h5": (
        lambda tmp, f: ["scan", f["custom.h5"], DATA],
        "The model uses a custom layer or function 'Doubler' that the scanner does not know",
    ),
    "truncated-keras": (
        lambda tmp, f: ["scan", _cut(f["probs.keras"], tmp / "cut.keras"), DATA],
        "'cut.keras' is damaged or not a .keras file",
    ),
    "truncated-h5": (
        lambda tmp, f: ["scan", _cut(f["probs.h5"], tmp / "cut.h5"), DATA],
        "'cut.h5' is damaged or not an HDF5 model file.",
    ),
    "random-bytes-keras": (
        lambda tmp, f: ["scan", _random(tmp / "random.keras"), DATA],
        "'random.keras' is damaged or not a .keras file",
    ),
    "random-bytes-h5": (
        lambda tmp, f: ["scan", _random(tmp / "random.h5"), DATA],
        "'random.h5' is damaged or not an HDF5 model file.",
    ),
    "two-inputs": (
        lambda tmp, f: ["scan", _two_inputs(tmp / "two.keras"), DATA],
        "The model takes 2 inputs; the scanner needs one image input.",
    ),
    "rank-2-input": (
        lambda tmp, f: ["scan", _flat_input(tmp / "flat.keras"), DATA],
        "The model input has shape (None, 16); the scanner needs images shaped",
    ),
    "regression-output": (
        lambda tmp, f: ["scan", _saved(image_model(1, None), tmp / "reg.keras"), DATA],
        "The model outputs 1 value per input: it looks like a regression or binary model",
    ),
    # zips of class folders
    "zip-slip-dotdot": (
        lambda tmp, f: ["scan", MODEL, write_zip(tmp / "d.zip", _pngs("a/1.png", "b/2.png", "../evil.png"))],
        "'d.zip' holds an unsafe file name '../evil.png' (absolute or with '..').",
    ),
    "zip-slip-absolute": (
        lambda tmp, f: ["scan", MODEL, write_zip(tmp / "d.zip", _pngs("a/1.png", "b/2.png", "/tmp/evil.png"))],
        "'d.zip' holds an unsafe file name '/tmp/evil.png' (absolute or with '..').",
    ),
    "zip-bomb": (lambda tmp, f: ["scan", MODEL, _zip_bomb(tmp / "d.zip")], "'d.zip': 'b/zeros.png' is compressed"),
    "decompression-bomb-png": (
        lambda tmp, f: [
            "scan",
            MODEL,
            write_zip(
                tmp / "d.zip", {**_pngs("a/1.png", "b/2.png"), "b/bomb.png": png_header_and_rows(20_000, 20_000)}
            ),
        ],
        "'b/bomb.png' declares more than 16,777,216 pixels (NC_MAX_IMAGE_PIXELS); it is refused as a decompression bomb.",  # noqa: E501
    ),
    "only-non-images": (
        lambda tmp, f: [
            "scan",
            MODEL,
            write_zip(tmp / "d.zip", {"a/x.txt": b"hello", "a/x.png": b"hello", "b/y.png": b"not really a png"}),
        ],
        "'d.zip' holds no readable images (PNG, JPEG, BMP, GIF, WebP, TIFF) in its class folders.",
    ),
    "empty-class-folders": (
        lambda tmp, f: ["scan", MODEL, write_zip(tmp / "d.zip", {"a/": None, "b/": None})],
        "'d.zip' holds no image files (PNG, JPEG, BMP, GIF, WebP, TIFF) in its class folders.",
    ),
    "one-class-with-images": (
        lambda tmp, f: ["scan", MODEL, write_zip(tmp / "d.zip", {**_pngs("a/1.png"), "b/": None})],
        "'d.zip' has image files for only one class ('a'); the scanner needs at least 2 classes.",
    ),
    "single-class": (
        lambda tmp, f: ["scan", MODEL, write_zip(tmp / "d.zip", _pngs("cat/1.png", "cat/2.png"))],
        "'d.zip' needs at least 2 classes, one sub-folder of images per class; found 1 (cat).",
    ),
    # npz
    "npz-missing-keys": (
        lambda tmp, f: ["scan", MODEL, write_npz(tmp / "d.npz", images=_grey_digits(), labels=np.zeros(20))],
        "'d.npz' lacks the key 'x' and 'y' (keys found: images, labels)",
    ),
    "npz-wrong-rank": (
        lambda tmp, f: ["scan", MODEL, write_npz(tmp / "d.npz", x=np.zeros((20, 784)), y=np.zeros(20, int))],
        "x has shape (20, 784); images need shape (N, height, width, channels) or (N, height, width).",
    ),
    "npz-nan": (
        lambda tmp, f: ["scan", MODEL, write_npz(tmp / "d.npz", x=_with(np.nan), y=np.arange(20) % 10)],
        "'d.npz': x holds NaN or infinite values; images need finite pixels.",
    ),
    "npz-inf": (
        lambda tmp, f: ["scan", MODEL, write_npz(tmp / "d.npz", x=_with(np.inf), y=np.arange(20) % 10)],
        "'d.npz': x holds NaN or infinite values; images need finite pixels.",
    ),
    "npz-label-outside-model": (
        lambda tmp, f: ["scan", MODEL, write_npz(tmp / "d.npz", x=_grey_digits(), y=np.arange(20) % 11)],
        "The data has the label 10 but the model knows 10 classes (0 to 9).",
    ),
    "npz-object-array": (
        lambda tmp, f: ["scan", MODEL, _object_npz(tmp / "d.npz")],
        "'d.npz': 'x' holds Python objects, which are not loaded for safety",
    ),
    "npz-image-shape-mismatch": (
        lambda tmp, f: [
            "scan",
            MODEL,
            write_npz(tmp / "d.npz", x=np.zeros((20, 32, 32, 3), np.uint8), y=np.zeros(20, int)),
        ],
        "The data holds 32x32x3 images; the model takes 28x28x1.",
    ),
    "npz-length-mismatch": (
        lambda tmp, f: ["scan", MODEL, write_npz(tmp / "d.npz", x=_grey_digits(), y=np.zeros(19, int))],
        "x holds 20 images but y holds 19 labels; they need the same length.",
    ),
    # parameters
    "target-out-of-range": (
        lambda tmp, f: ["reverse", MODEL, DATA, "--target", "10", "--out", tmp / "out"],
        "Class 10 is out of range: the model has classes 0 to 9.",
    ),
    "negative-target": (
        lambda tmp, f: ["reverse", MODEL, DATA, "--target", "-1", "--out", tmp / "out"],
        "Class -1 is out of range: the model has classes 0 to 9.",
    ),
    "scan-class-out-of-range": (
        lambda tmp, f: ["scan", MODEL, DATA, "--classes", "3,99"],
        "Class 99 is out of range: the model has classes 0 to 9.",
    ),
    "epochs-0": (lambda tmp, f: ["scan", MODEL, DATA, "--epochs", "0"], "Epochs must be between 1 and 100000, not 0."),
    "epochs-10**9": (
        lambda tmp, f: ["scan", MODEL, DATA, "--epochs", str(10**9)],
        "Epochs must be between 1 and 100000, not 1000000000.",
    ),
    "batch-size-0": (
        lambda tmp, f: ["scan", MODEL, DATA, "--batch-size", "0"],
        "Batch size must be at least 1, not 0.",
    ),
    "batch-size-above-data": (
        lambda tmp, f: ["scan", MODEL, DATA, "--batch-size", str(MNIST_SAMPLES + 1)],
        f"Batch size {MNIST_SAMPLES + 1} is larger than the {MNIST_SAMPLES} samples in the data.",
    ),
    "max-samples-0": (
        lambda tmp, f: ["scan", MODEL, DATA, "--max-samples", "0"],
        "The sample limit must be at least 1, not 0.",
    ),
    "unknown-pixel-range": (
        lambda tmp, f: ["scan", MODEL, DATA, "--pixel-range", "0-42"],
        "Unknown pixel range '0-42': use 0-1, 0-255, -1-1 or meanstd:MEAN/STD",
    ),
}
# Cases where a breach would run code or write files: also checked through a real CLI process.
IN_A_PROCESS = ("lambda-keras", "lambda-h5", "zip-slip-dotdot", "zip-slip-absolute", "npz-object-array")


def _cut(source, path):
    raw = source.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _random(path):
    path.write_bytes(np.random.default_rng(7).bytes(4096))
    return path


def _with(value: float) -> np.ndarray:
    x = _grey_digits().astype(np.float32)
    x[3, 10, 10] = value
    return x


@pytest.fixture
def case_dirs(tmp_path):
    """``inputs`` for the files a case builds and ``cwd``, the empty folder the CLI runs in."""
    (tmp_path / "inputs").mkdir()
    (tmp_path / "cwd").mkdir()
    return tmp_path / "inputs", tmp_path / "cwd"


def _assert_nothing_written(inputs, cwd, before: set, marker_files) -> None:
    assert set(inputs.rglob("*")) == before, "the CLI wrote next to its inputs"
    assert list(cwd.iterdir()) == [], "the CLI wrote into its working directory"
    for marker in marker_files:
        assert not os.path.exists(marker), f"{marker} exists: hostile input ran code or escaped"


def _markers(inputs, files) -> list:
    return [files["marker"], inputs / "unpickled", inputs.parent / "evil.png", inputs / "evil.png", "/tmp/evil.png"]


@pytest.mark.parametrize("case", list(CASES))
def test_cli_refuses_with_one_error_line(case, case_dirs, model_files, capsys, monkeypatch):
    inputs, cwd = case_dirs
    build, expected = CASES[case]
    argv = [str(arg) for arg in build(inputs, model_files)]
    before = set(inputs.rglob("*"))
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("NC_VERBOSE", "1")  # keep sys.stderr as pytest's capture (no fd juggling)

    code = main([*argv, "--quiet"])

    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert (code, out) == (EXIT_BAD_INPUT, ""), err
    assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), err
    _assert_nothing_written(inputs, cwd, before, _markers(inputs, model_files))


@pytest.mark.integration
@pytest.mark.parametrize("case", IN_A_PROCESS)
def test_cli_process_refuses_with_one_error_line(case, case_dirs, model_files, tmp_path):
    inputs, cwd = case_dirs
    build, expected = CASES[case]
    argv = [str(arg) for arg in build(inputs, model_files)]
    before = set(inputs.rglob("*"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
    env.pop("NC_VERBOSE", None)

    done = subprocess.run(
        [sys.executable, "-m", "nc_core", *argv, "--quiet"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert (done.returncode, done.stdout) == (EXIT_BAD_INPUT, ""), done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), done.stderr
    assert "Traceback" not in done.stderr
    _assert_nothing_written(inputs, cwd, before, _markers(inputs, model_files))
