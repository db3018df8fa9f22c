"""No untrusted file under 10 MB makes a load or import cost more than 1 GB of memory or 100 MB of disk.

Each case is a real hostile file as a security review built it (small on disk, huge when read),
loaded in a fresh process by tests/loading/resource_probe.py, which reports the peak memory above a
warmed-up baseline, the bytes written and the CPU time. docs/hostile-inputs.md lists the figures.
"""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from tests.helpers.paths import sample_path
from tests.helpers.user_files import png_header_and_rows

PROBE = Path(__file__).with_name("resource_probe.py")
MEMORY_BUDGET_MB = 1024
DISK_BUDGET_MB = 100
INPUT_LIMIT_BYTES = 10 * 1024**2
MNIST_MODEL = sample_path("mnist_clean.keras")
MNIST_DATA = sample_path("mnist_data.npz")


def probe(*args, env: dict | None = None, timeout: int = 120) -> dict:
    result = subprocess.run(
        [sys.executable, str(PROBE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_within_budget(path: Path, cost: dict) -> None:
    print(f"COST {path.name} {path.stat().st_size / 1024**2:.2f} MB: {cost}")
    assert path.stat().st_size < INPUT_LIMIT_BYTES, "the hostile file should be a small one"
    assert cost["extra_mb"] < MEMORY_BUDGET_MB, cost
    assert cost["written_mb"] < DISK_BUDGET_MB, cost


def _stream_zeros(archive: zipfile.ZipFile, name: str, nbytes: int, prefix: bytes = b"") -> None:
    """A member of ``nbytes`` zeros, deflated as it is written (never held in memory)."""
    chunk = bytes(16 * 1024**2)
    with archive.open(name, "w", force_zip64=True) as member:
        member.write(prefix)
        left = nbytes - len(prefix)
        while left > 0:
            member.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)


def _keras_with(path: Path, replace: dict | None = None, zeros: dict | None = None) -> Path:
    """The shipped MNIST model's archive with members replaced (bytes) or added (zero-filled)."""
    with zipfile.ZipFile(MNIST_MODEL) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            if info.filename not in (zeros or {}):
                out.writestr(info.filename, (replace or {}).get(info.filename, source.read(info)))
        for name, content in (replace or {}).items():
            if name not in source.namelist():
                out.writestr(name, content)
        for name, nbytes in (zeros or {}).items():
            _stream_zeros(out, name, nbytes)
    return path


@pytest.mark.integration
def test_a_huge_architecture_json_is_refused_before_parsing(tmp_path):
    config = json.loads(zipfile.ZipFile(MNIST_MODEL).read("config.json"))
    config["config"]["padding"] = [format(i, "x") * 8 for i in range(3_500_000)]  # ~31 MB of JSON
    path = _keras_with(tmp_path / "big_config.keras", replace={"config.json": json.dumps(config).encode()})
    cost = probe("inputs", path, MNIST_DATA)
    assert "architecture" in cost["error"] and "NC_MAX_MODEL_CONFIG_MB" in cost["error"]
    assert_within_budget(path, cost)


@pytest.mark.integration
def test_zero_filled_assets_are_refused_before_keras_unpacks_them(tmp_path):
    path = _keras_with(tmp_path / "assets.keras", zeros={"assets/blob.bin": 1500 * 1024**2})
    cost = probe("inputs", path, MNIST_DATA)
    assert "zip bomb" in cost["error"]
    assert_within_budget(path, cost)


@pytest.mark.integration
def test_moderately_compressed_assets_are_refused_by_their_size(tmp_path):
    noise = np.random.default_rng(0).integers(0, 2, 40 * 1024**2, dtype=np.uint8).tobytes()  # ~7:1
    path = _keras_with(tmp_path / "assets.keras", replace={"assets/blob.bin": noise})
    cost = probe("inputs", path, MNIST_DATA)
    assert "assets" in cost["error"] and "NC_MAX_MODEL_ASSETS_MB" in cost["error"]
    assert_within_budget(path, cost)


@pytest.mark.integration
def test_a_zip_bomb_weights_member_is_refused(tmp_path):
    weights = zipfile.ZipFile(MNIST_MODEL).read("model.weights.h5")
    path = tmp_path / "bomb_weights.keras"
    with zipfile.ZipFile(MNIST_MODEL) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            if info.filename != "model.weights.h5":
                out.writestr(info.filename, source.read(info))
        _stream_zeros(out, "model.weights.h5", 1500 * 1024**2, prefix=weights)
    cost = probe("inputs", path, MNIST_DATA)
    assert "zip bomb" in cost["error"]
    assert_within_budget(path, cost)


def _weights_with_a_huge_array(declared_values: int) -> bytes:
    """The shipped model's weights file with one kernel swapped for an unwritten, chunked (so
    nearly free on disk) array that declares ``declared_values`` floats."""
    buffer = io.BytesIO(zipfile.ZipFile(MNIST_MODEL).read("model.weights.h5"))
    with h5py.File(buffer, "a") as file:
        del file["layers/dense/vars/0"]
        file.create_dataset(
            "layers/dense/vars/0", shape=(declared_values,), dtype="float32", chunks=(1024**2,), compression="gzip"
        )
    return buffer.getvalue()


@pytest.mark.integration
def test_weights_that_declare_more_than_the_architecture_needs_are_refused(tmp_path):
    path = _keras_with(
        tmp_path / "huge_array.keras", replace={"model.weights.h5": _weights_with_a_huge_array(400 * 1024**2)}
    )
    cost = probe("inputs", path, MNIST_DATA)
    assert "declares 1,600 MB of weights but its architecture needs" in cost["error"]
    assert_within_budget(path, cost)


@pytest.mark.integration
def test_an_h5_model_with_a_huge_config_is_refused(tmp_path):
    model = keras.models.load_model(MNIST_MODEL)
    path = tmp_path / "big_config.h5"
    model.save(path)
    with h5py.File(path, "a") as file:
        config = json.loads(file.attrs["model_config"])
        config["padding"] = "x" * (6 * 1024**2)
        file.attrs["model_config"] = json.dumps(config)
    cost = probe("inputs", path, MNIST_DATA)
    assert "NC_MAX_MODEL_CONFIG_MB" in cost["error"]
    assert_within_budget(path, cost)


@pytest.mark.integration
def test_a_model_with_400_000_classes_is_refused(tmp_path):
    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.Dense(1)(keras.layers.Flatten()(inputs))
    path = tmp_path / "many_classes.keras"
    keras.Model(inputs, keras.layers.Dense(400_000, activation="softmax")(hidden)).save(path)
    cost = probe("inputs", path, MNIST_DATA)
    assert "400,000 classes" in cost["error"] and "NC_MAX_CLASSES" in cost["error"]
    assert_within_budget(path, cost)


@pytest.mark.integration
def test_an_npz_whose_array_inflates_to_a_gigabyte_is_refused(tmp_path):
    path = tmp_path / "bomb.npz"
    shape = (1_200_000, 28, 28, 1)
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        _stream_zeros(archive, "x.npy", len(header.getvalue()) + int(np.prod(shape)), prefix=header.getvalue())
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(shape[0], dtype=np.uint8))
        archive.writestr("y.npy", buffer.getvalue())
    cost = probe("data", path, "28x28x1")
    assert "zip bomb" in cost["error"] or "NC_MAX_DATA_VALUES" in cost["error"]
    assert_within_budget(path, cost)


@pytest.mark.integration
def test_an_npz_with_too_many_pixel_values_is_refused_by_that_limit(tmp_path):
    path = tmp_path / "big.npz"
    x = np.random.default_rng(0).integers(0, 255, (2_000, 28, 28, 1), dtype=np.uint8)
    np.savez(path, x=x, y=np.arange(len(x)) % 10)
    cost = probe("data", path, "28x28x1", env={"NC_MAX_DATA_VALUES": "1000000"})
    assert "1,568,000 pixel values" in cost["error"] and "NC_MAX_DATA_VALUES" in cost["error"]


@pytest.mark.integration
def test_a_fifo_in_a_data_folder_is_skipped_instead_of_blocking(tmp_path):
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(3):
            keras.utils.save_img(tmp_path / "data" / label / f"{i}.png", np.full((28, 28, 1), 40 * i, np.uint8))
    os.mkfifo(tmp_path / "data" / "a" / "pipe.png")
    cost = probe("data", tmp_path / "data", "28x28x1", timeout=60)
    assert cost["error"] is None


@pytest.mark.integration
def test_a_fifo_given_as_the_data_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.npz")
    cost = probe("data", tmp_path / "pipe.npz", "28x28x1", timeout=60)
    assert "is not a regular file" in cost["error"]


def _png_zip(path: Path, side: int, count: int) -> Path:
    png = png_header_and_rows(side, side)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            archive.writestr(f"{'ab'[i % 2]}/{i}.png", png)
    return path


@pytest.mark.integration
def test_forty_7000_pixel_pngs_are_refused_from_their_headers(tmp_path):
    path = _png_zip(tmp_path / "big_pngs.zip", 7000, 40)
    cost = probe("data", path, "28x28x1")
    assert "NC_MAX_IMAGE_PIXELS" in cost["error"]
    assert cost["cpu_s"] < 5
    assert_within_budget(path, cost)


@pytest.mark.integration
def test_many_large_pngs_stop_at_the_decoding_budget(tmp_path):
    path = _png_zip(tmp_path / "many_pngs.zip", 4000, 40)
    cost = probe("data", path, "28x28x1")
    assert "NC_MAX_DECODED_PIXELS" in cost["error"]
    assert cost["cpu_s"] < 20
    assert_within_budget(path, cost)


def _bundle(path: Path, members: dict) -> Path:
    record = {
        "kind": "scan",
        "status": "done",
        "model": "m.keras",
        "data": "d.npz",
        "settings": {},
        "created": 1_700_000_000.0,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("run.json", json.dumps(record))
        for name, nbytes in members.items():
            _stream_zeros(archive, name, nbytes)
    return path


@pytest.mark.integration
def test_a_bundle_of_zero_filled_members_is_refused_from_its_headers(tmp_path):
    path = _bundle(tmp_path / "bomb.zip", {f"classes/{i}.npz": 63 * 1024**2 for i in range(24)})
    cost = probe("bundle", path, tmp_path / "store")
    assert "zip bomb" in cost["error"]
    assert_within_budget(path, cost)


@pytest.mark.integration
def test_a_bundle_whose_class_mask_inflates_to_gigabytes_is_refused(tmp_path):
    inner = io.BytesIO()
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": "<f4", "fortran_order": False, "shape": (20_000, 20_000)})
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as arrays:
        _stream_zeros(arrays, "mask.npy", len(header.getvalue()) + 4 * 20_000**2, prefix=header.getvalue())
        pattern = io.BytesIO()
        np.save(pattern, np.zeros((28, 28, 1), np.float32))
        arrays.writestr("pattern.npy", pattern.getvalue())
    path = tmp_path / "mask_bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(
            "run.json",
            json.dumps(
                {
                    "kind": "scan",
                    "status": "done",
                    "model": "m",
                    "data": "d",
                    "settings": {},
                    "created": 1_700_000_000.0,
                }
            ),
        )
        archive.writestr("classes/0.npz", inner.getvalue())
    cost = probe("bundle", path, tmp_path / "store")
    assert "0.npz" in cost["error"]
    assert_within_budget(path, cost)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["mnist_clean.keras", "signs_backdoored.keras"])
def test_the_shipped_models_pass_every_limit(name):
    cost = probe("inputs", sample_path(name), sample_path(name.split("_")[0] + "_data.npz"))
    assert cost["error"] is None
