"""Loading user data: npz, zips and folders of class folders, single images; hostile inputs."""

from __future__ import annotations

import io
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nc_core.errors import InvalidDataError, InvalidParameterError
from nc_core.loading import data
from nc_core.loading.data import (
    Dataset,
    archives,
    check_fits,
    images,
    load_data,
    load_image_folder,
    load_image_zip,
    load_images,
    load_npz,
    pick_pixel_range,
    stratified_indices,
)
from nc_core.loading.pixels import PixelRange
from tests.helpers.user_files import EvilPickle, image_bytes, png_header_and_rows, write_npz, write_zip


def _pets() -> dict[str, bytes | None]:
    """Two classes inside a wrapper folder, mixed formats and sizes, plus clutter to skip."""
    return {
        "pets/cat/white.png": image_bytes((255, 255, 255)),
        "pets/cat/black.jpg": image_bytes((0, 0, 0), size=(30, 20), fmt="JPEG"),
        "pets/cat/deeper/grey.png": image_bytes(128, mode="L"),
        "pets/dog/colour.png": image_bytes((255, 0, 128), size=(5, 5)),
        "pets/dog/alpha.png": image_bytes((0, 255, 0, 10), mode="RGBA"),
        "pets/dog/notes.txt": b"not an image",
        "pets/dog/fake.png": b"not a png either",
        "pets/readme.md": b"# pets",
        "pets/.DS_Store": b"\0\0",
        "__MACOSX/pets/cat/._white.png": b"resource fork",
    }


# --------------------------------------------------------------------------- npz


def test_npz_grey_uint8_round_trip(tmp_path):
    x = np.arange(4 * 28 * 28, dtype=np.int64).reshape(4, 28, 28) % 256
    ds = load_npz(write_npz(tmp_path / "d.npz", x=x.astype(np.uint8), y=np.array([0, 1, 2, 1])))
    assert ds.x.shape == (4, 28, 28, 1) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 2, 1]
    assert ds.pixel_range.name == "0-255" and ds.range_from_data
    assert ds.source == "d.npz" and ds.class_names is None
    np.testing.assert_allclose(ds.model_inputs()[..., 0], x, atol=1e-3)
    assert len(ds) == 4 and ds.num_classes_seen == 3 and ds.class_counts() == {0: 1, 1: 2, 2: 1}


def test_npz_one_hot_labels_and_class_names(tmp_path):
    x = np.random.default_rng(0).random((3, 4, 4, 3)).astype(np.float32) * 2 - 1
    y = np.eye(3)[[2, 0, 1]]
    ds = load_npz(write_npz(tmp_path / "d.npz", x=x, y=y, class_names=np.array(["a", "b", "c"])))
    assert ds.y.tolist() == [2, 0, 1] and ds.class_names == ["a", "b", "c"]
    assert ds.pixel_range.name == "-1-1"
    assert ds.x.min() >= 0 and ds.x.max() <= 1


def test_npz_standardised_data_maps_to_unit(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4, 4, 3)).astype(np.float32) * 3
    ds = load_npz(write_npz(tmp_path / "d.npz", x=x, y=np.arange(6) % 2))
    assert ds.pixel_range.name == "meanstd"
    np.testing.assert_allclose(ds.model_inputs(), x, atol=1e-4)


def test_npz_explicit_range_and_change_keeps_stored_values(tmp_path):
    x = np.full((2, 3, 3, 1), 200, np.uint8)
    ds = load_npz(write_npz(tmp_path / "d.npz", x=x, y=[0, 1]), pixel_range=PixelRange.parse("0-1"))
    assert ds.x.max() == 1.0  # clipped under the wrong range
    fixed = ds.with_pixel_range(PixelRange.parse("0-255"))
    np.testing.assert_allclose(fixed.x, 200 / 255, atol=1e-6)
    np.testing.assert_allclose(fixed.subset([1]).with_pixel_range(PixelRange.parse("0-255")).x, 200 / 255, atol=1e-6)


def test_npz_max_samples_is_stratified_and_repeatable(tmp_path):
    y = np.array([0] * 90 + [1] * 9 + [2])
    path = write_npz(tmp_path / "d.npz", x=np.zeros((100, 2, 2), np.uint8), y=y)
    ds = load_npz(path, max_samples=10)
    assert len(ds) == 10 and set(ds.y.tolist()) == {0, 1, 2}
    assert load_npz(path, max_samples=10).y.tolist() == ds.y.tolist()
    assert len(load_npz(path, max_samples=1000)) == 100
    with pytest.raises(InvalidParameterError, match="at least 1"):
        load_npz(path, max_samples=0)


def test_stratified_indices_keeps_shares():
    y = np.repeat([0, 1, 2, 3], [500, 300, 150, 50])
    idx = stratified_indices(y, 100)
    assert len(idx) == 100 and np.all(np.diff(idx) > 0)
    counts = np.bincount(y[idx], minlength=4)
    assert abs(counts[0] - 50) <= 2 and abs(counts[3] - 5) <= 2


def test_npz_object_array_refused_without_unpickling(tmp_path):
    EvilPickle.marker = str(tmp_path / "unpickled")
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([EvilPickle()], dtype=object), y=np.array([0]))
    with pytest.raises(InvalidDataError, match="'x' holds Python objects"):
        load_npz(path)
    assert not os.path.exists(EvilPickle.marker)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_npz_non_finite(tmp_path, value):
    x = np.zeros((2, 3, 3), np.float32)
    x[1, 1, 1] = value
    with pytest.raises(InvalidDataError, match="NaN or infinite"):
        load_npz(write_npz(tmp_path / "d.npz", x=x, y=[0, 1]))


def test_npz_missing_keys(tmp_path):
    path = write_npz(tmp_path / "d.npz", images=np.zeros((2, 3, 3)), labels=[0, 1])
    with pytest.raises(InvalidDataError, match=r"lacks the key 'x' and 'y' \(keys found: images, labels\)"):
        load_npz(path)
    with pytest.raises(InvalidDataError, match=r"lacks the key 'y' \(keys found: x\)"):
        load_npz(write_npz(tmp_path / "e.npz", x=np.zeros((2, 3, 3))))


@pytest.mark.parametrize(
    "x,y,message",
    [
        (np.zeros((3, 4, 4)), np.zeros(2, int), "x holds 3 images but y holds 2 labels"),
        (np.zeros((3, 16)), np.zeros(3, int), r"x has shape \(3, 16\)"),
        (np.zeros((1, 2, 4, 4, 1)), np.zeros(1, int), "x has shape"),
        (np.zeros((0, 4, 4, 1)), np.zeros(0, int), r"no images \(N = 0\)"),
        (np.zeros((2, 3, 8, 8)), np.zeros(2, int), "channels-first"),
        (np.full((2, 4, 4), "a"), np.zeros(2, int), "x holds text; images need numbers"),
        (np.zeros((2, 4, 4), complex), np.zeros(2, int), "x holds complex numbers"),
        (np.full((2, 4, 4), 1e9), np.zeros(2, int), "too large for pixels"),
        (np.zeros((2, 4, 4)), np.array([0, -1]), "negative labels"),
        (np.zeros((2, 4, 4)), np.array([0.0, 2.5]), "non-integer labels"),
        (np.zeros((2, 4, 4)), np.array([0.0, np.nan]), "non-integer labels"),
        (np.zeros((2, 4, 4)), np.array(["cat", "dog"]), "y holds text; labels need integer class ids"),
        (np.zeros((2, 4, 4)), np.zeros((2, 2, 2)), r"y has shape \(2, 2, 2\)"),
        (np.zeros((2, 4, 4)), np.array([0, 10**9]), "class ids above"),
    ],
)
def test_npz_bad_arrays(tmp_path, x, y, message):
    with pytest.raises(InvalidDataError, match=message):
        load_npz(write_npz(tmp_path / "d.npz", x=x, y=y))


def test_npz_bad_class_names(tmp_path):
    x, y = np.zeros((2, 4, 4)), np.array([0, 2])
    with pytest.raises(InvalidDataError, match="class_names holds 2 names but the labels go up to 2"):
        load_npz(write_npz(tmp_path / "d.npz", x=x, y=y, class_names=np.array(["a", "b"])))
    with pytest.raises(InvalidDataError, match="array of strings"):
        load_npz(write_npz(tmp_path / "e.npz", x=x, y=y, class_names=np.arange(3)))


@pytest.mark.parametrize("content", ["random", "empty", "truncated", "npy", "zip"])
def test_npz_bad_files(tmp_path, content):
    good = write_npz(tmp_path / "good.npz", x=np.zeros((2, 8, 8)), y=[0, 1]).read_bytes()
    npy = io.BytesIO()
    np.save(npy, np.zeros(3))
    other_zip = write_zip(tmp_path / "o.zip", {"x.npy": b"hello", "y.npy": b"world"}).read_bytes()
    blobs = {
        "random": np.random.default_rng(0).bytes(3000),
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "npy": npy.getvalue(),
        "zip": other_zip,
    }
    path = tmp_path / "bad.npz"
    path.write_bytes(blobs[content])
    with pytest.raises(InvalidDataError, match="not an npz archive|not a readable npz|not a numpy array"):
        load_npz(path)


def test_npz_header_claiming_huge_array_refused(tmp_path):
    """A tiny file whose header declares gigabytes must not be allocated."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 1000)})
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
        archive.writestr("y.npy", _npy_bytes(np.zeros(1, int)))
    with pytest.raises(InvalidDataError, match="'x' is truncated or damaged"):
        load_npz(path)


def test_npz_missing_file(tmp_path):
    with pytest.raises(InvalidDataError, match="does not exist"):
        load_npz(tmp_path / "nope.npz")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# --------------------------------------------------------------------------- zips and folders


def test_zip_round_trip_colour(tmp_path):
    ds = load_image_zip(write_zip(tmp_path / "pets.zip", _pets()), (8, 6), 3)
    assert ds.class_names == ["cat", "dog"] and ds.source == "pets.zip"
    assert ds.x.shape == (5, 8, 6, 3) and ds.x.dtype == np.float32
    assert sorted(ds.y.tolist()) == [0, 0, 0, 1, 1]
    assert not ds.range_from_data and ds.pixel_range.name == "0-255"
    assert ds.skipped == 3  # notes.txt, fake.png, readme.md; hidden files are not counted
    means = {round(float(v), 2) for v in ds.x.mean(axis=(1, 2, 3))}
    assert 1.0 in means and 0.0 in means  # white and black survived the resize
    colour = next(img for img in ds.x if np.allclose(img[..., 0], 1) and np.allclose(img[..., 1], 0))
    np.testing.assert_allclose(colour[0, 0], [1.0, 0.0, 128 / 255], atol=1e-6)


def test_zip_round_trip_grey_and_other_size(tmp_path):
    ds = load_image_zip(write_zip(tmp_path / "pets.zip", _pets()), (3, 17), 1)
    assert ds.x.shape == (5, 3, 17, 1)
    assert ds.x.min() >= 0 and ds.x.max() <= 1
    rgba = load_image_zip(tmp_path / "pets.zip", (4, 4), 4)
    assert rgba.x.shape == (5, 4, 4, 4)


def test_folder_matches_zip(tmp_path):
    members = _pets()
    for name, content in members.items():
        target = tmp_path / "tree" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    from_folder = load_image_folder(tmp_path / "tree", (8, 8), 3)
    from_zip = load_image_zip(write_zip(tmp_path / "pets.zip", members), (8, 8), 3)
    assert from_folder.class_names == from_zip.class_names == ["cat", "dog"]
    assert from_folder.source == "tree"
    order_f, order_z = np.argsort(from_folder.x.sum(axis=(1, 2, 3))), np.argsort(from_zip.x.sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(from_folder.x[order_f], from_zip.x[order_z], atol=1e-6)
    np.testing.assert_array_equal(from_folder.y[order_f], from_zip.y[order_z])


def test_folder_missing(tmp_path):
    with pytest.raises(InvalidDataError, match="does not exist"):
        load_image_folder(tmp_path / "nope", (8, 8), 3)


def test_empty_class_folder_keeps_its_id(tmp_path):
    png = image_bytes((9, 9, 9))
    ds = load_image_zip(write_zip(tmp_path / "d.zip", {"a/1.png": png, "b/": None, "c/2.png": png}), (4, 4), 3)
    assert ds.class_names == ["a", "b", "c"] and ds.y.tolist() == [0, 2]
    with pytest.raises(InvalidDataError, match="only one class \\('a'\\); the scanner needs at least 2"):
        load_image_zip(write_zip(tmp_path / "e.zip", {"a/1.png": png, "b/": None}), (4, 4), 3)


def test_single_class_refused(tmp_path):
    png = image_bytes((9, 9, 9))
    with pytest.raises(InvalidDataError, match=r"needs at least 2 classes.*found 1 \(cat\)"):
        load_image_zip(write_zip(tmp_path / "d.zip", {"cat/1.png": png, "cat/2.png": png}), (4, 4), 3)
    with pytest.raises(InvalidDataError, match="needs at least 2 classes.*found none"):
        load_image_zip(write_zip(tmp_path / "e.zip", {"1.png": png, "2.png": png}), (4, 4), 3)


def test_only_non_images_refused(tmp_path):
    members = {"a/x.txt": b"hello", "a/x.png": b"hello", "b/y.png": b"not really a png"}
    with pytest.raises(InvalidDataError, match="no readable images"):
        load_image_zip(write_zip(tmp_path / "d.zip", members), (4, 4), 3)


def test_one_class_unreadable_refused(tmp_path):
    members = {"a/x.png": image_bytes((1, 2, 3)), "b/y.png": b"not really a png"}
    with pytest.raises(InvalidDataError, match="readable images for only one class"):
        load_image_zip(write_zip(tmp_path / "d.zip", members), (4, 4), 3)


@pytest.mark.parametrize(
    "name", ["../evil.png", "/abs/evil.png", "a/../../evil.png", "C:/evil.png", "a\\..\\..\\x.png"]
)
def test_zip_slip_refused(tmp_path, name):
    png = image_bytes((1, 2, 3))
    path = write_zip(tmp_path / "d.zip", {"a/1.png": png, "b/2.png": png, name: png})
    with pytest.raises(InvalidDataError, match="unsafe file name"):
        load_image_zip(path, (4, 4), 3)
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_bomb_ratio_refused(tmp_path):
    png = image_bytes((1, 2, 3))
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/1.png", png)
        archive.writestr("b/2.png", png)
        with archive.open("b/zeros.png", "w") as member:
            for _ in range(4):
                member.write(bytes(1024**2))
    with pytest.raises(InvalidDataError, match="compressed .* to 1, which looks like a zip bomb"):
        load_image_zip(path, (4, 4), 3)


def test_zip_limits_on_size_and_count(tmp_path, monkeypatch):
    png = image_bytes((1, 2, 3))
    path = write_zip(tmp_path / "d.zip", {f"{c}/{i}.png": png for c in "ab" for i in range(3)})
    assert len(load_image_zip(path, (4, 4), 3)) == 6
    monkeypatch.setattr(archives, "MAX_FILES", 5)
    with pytest.raises(InvalidDataError, match="holds 6 files; the limit is 5"):
        load_image_zip(path, (4, 4), 3)
    monkeypatch.setattr(archives, "MAX_FILES", 50)
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 4 * len(png))
    with pytest.raises(InvalidDataError, match="unpacks to more than"):
        load_image_zip(path, (4, 4), 3)
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 10**9)
    monkeypatch.setattr(archives, "MAX_FILE_BYTES", len(png) - 1)
    with pytest.raises(InvalidDataError, match="are refused"):
        load_image_zip(path, (4, 4), 3)


def test_decompression_bomb_png_refused(tmp_path):
    bomb = png_header_and_rows(20_000, 20_000)
    assert len(bomb) < 200_000
    png = image_bytes((1, 2, 3))
    path = write_zip(tmp_path / "d.zip", {"a/1.png": png, "b/2.png": png, "b/bomb.png": bomb})
    with pytest.raises(InvalidDataError, match="'b/bomb.png' declares more than .* decompression bomb"):
        load_image_zip(path, (4, 4), 3)
    with pytest.raises(InvalidDataError, match="decompression bomb"):
        load_images([("bomb.png", bomb)], (4, 4), 1)


def test_our_pixel_limit_applies_below_pillows(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InvalidDataError, match="more than 100 pixels"):
        load_images([("big.png", image_bytes((1, 2, 3), size=(20, 20)))], (4, 4), 3)


def test_not_a_zip(tmp_path):
    path = tmp_path / "d.zip"
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(0).bytes(500))
    with pytest.raises(InvalidDataError, match="not a readable zip file"):
        load_image_zip(path, (4, 4), 3)


def test_damaged_member(tmp_path):
    png = image_bytes((1, 2, 3))
    path = write_zip(tmp_path / "d.zip", {"a/1.png": png, "b/2.png": png})
    raw = bytearray(path.read_bytes())
    position = raw.index(png[20:40]) if png[20:40] in raw else 60
    raw[position : position + 8] = b"\xff" * 8
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidDataError, match="damaged"):
        load_image_zip(path, (4, 4), 3)


def test_zip_max_samples(tmp_path):
    png = image_bytes((1, 2, 3))
    path = write_zip(tmp_path / "d.zip", {f"{c}/{i}.png": png for c in "abc" for i in range(10)})
    ds = load_image_zip(path, (4, 4), 3, max_samples=6)
    assert len(ds) == 6 and ds.class_counts() == {0: 2, 1: 2, 2: 2}


@pytest.mark.parametrize("size,channels", [((0, 4), 3), ((4,), 3), ((4, 10**5), 3), ((4, 4), 5), ((4, 4), 0)])
def test_bad_image_parameters(tmp_path, size, channels):
    with pytest.raises(InvalidParameterError):
        load_images([("a.png", image_bytes((1, 2, 3)))], size, channels)


# --------------------------------------------------------------------------- single images


def test_load_images_with_and_without_labels():
    files = [("a.png", image_bytes((255, 0, 0))), ("b.jpg", image_bytes((0, 0, 255), fmt="JPEG"))]
    ds = load_images(files, (5, 7), 3, labels=[3, 1])
    assert ds.x.shape == (2, 5, 7, 3) and ds.y.tolist() == [3, 1] and ds.source == "2 uploaded images"
    unlabelled = load_images(files[:1], (5, 7), 1)
    assert unlabelled.y.tolist() == [data.UNKNOWN_LABEL] and unlabelled.source == "a.png"
    assert unlabelled.class_counts() == {} and unlabelled.num_classes_seen == 0


def test_load_images_errors():
    png = image_bytes((1, 2, 3))
    with pytest.raises(InvalidDataError, match="'notes.txt' is not an image"):
        load_images([("a.png", png), ("notes.txt", b"hello")], (4, 4), 3)
    with pytest.raises(InvalidDataError, match="No images"):
        load_images([], (4, 4), 3)
    with pytest.raises(InvalidParameterError, match="2 images were given with 1 labels"):
        load_images([("a.png", png), ("b.png", png)], (4, 4), 3, labels=[0])
    with pytest.raises(InvalidParameterError, match="whole numbers from 0"):
        load_images([("a.png", png)], (4, 4), 3, labels=[-2])


def test_eps_is_not_opened():
    """Formats outside the allow-list (EPS would run Ghostscript) are not images to us."""
    with pytest.raises(InvalidDataError, match="is not an image"):
        load_images([("x.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")], (4, 4), 3)


# --------------------------------------------------------------------------- dispatch, fit, range


def test_load_data_dispatch_and_fit(tmp_path):
    npz = write_npz(tmp_path / "d.npz", x=np.zeros((2, 28, 28), np.uint8), y=[0, 1])
    assert load_data(npz, (28, 28, 1)).x.shape == (2, 28, 28, 1)
    with pytest.raises(InvalidDataError, match="^The data holds 28x28x1 images; the model takes 32x32x3.$"):
        load_data(npz, (32, 32, 3))
    with pytest.raises(InvalidDataError, match="label 1 but the model knows 1 classes"):
        load_data(npz, (28, 28, 1), num_classes=1)
    zipped = load_data(write_zip(tmp_path / "p.zip", _pets()), (9, 9, 3), PixelRange.parse("-1-1"))
    assert zipped.x.shape == (5, 9, 9, 3) and zipped.pixel_range.name == "-1-1"
    assert zipped.model_inputs().min() >= -1
    folder = tmp_path / "tree"
    for name, content in _pets().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    assert load_data(folder, (6, 6, 1), max_samples=3).x.shape == (3, 6, 6, 1)


def test_load_data_unsupported(tmp_path):
    (tmp_path / "d.csv").write_text("1,2")
    with pytest.raises(InvalidDataError, match="use an .npz file, a .zip of class folders, or a folder"):
        load_data(tmp_path / "d.csv", (4, 4, 1))
    with pytest.raises(InvalidDataError, match="does not exist"):
        load_data(tmp_path / "gone.csv", (4, 4, 1))


def test_images_with_pixel_range_only_changes_range():
    ds = load_images([("a.png", image_bytes((255, 255, 255)))], (2, 2), 3, labels=[0])
    moved = ds.with_pixel_range(PixelRange.parse("-1-1"))
    np.testing.assert_array_equal(moved.x, ds.x)
    assert moved.model_inputs().max() == 1.0 and ds.model_inputs().max() == 255.0


def test_check_fits_ignores_unknown_labels():
    ds = load_images([("a.png", image_bytes((1, 1, 1)))], (2, 2), 3)
    check_fits(ds, (2, 2, 3), num_classes=2)


def test_pick_pixel_range_finds_the_range_the_model_expects():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    x = np.where(y[:, None, None, None] == 1, 0.9, 0.1) * np.ones((300, 4, 4, 3), np.float32)
    ds = Dataset(x.astype(np.float32), y, None, "t", PixelRange.parse("0-1"), False)

    def thresholds_at_127(inputs):  # a "model" trained on 0-255 pixels
        bright = inputs.mean(axis=(1, 2, 3)) > 127
        return np.stack([~bright, bright], axis=1).astype(np.float32)

    best, accuracies = pick_pixel_range(thresholds_at_127, ds)
    assert best.name == "0-255"
    assert accuracies["0-255"] == 1.0 and set(accuracies) == {"0-1", "0-255", "-1-1"}
    assert accuracies["0-1"] < 0.7
    calls = []
    pick_pixel_range(lambda v: (calls.append(len(v)), thresholds_at_127(v))[1], ds)
    assert max(calls) <= 256


def test_pick_pixel_range_scores_unlabelled_images_by_confidence():
    x = np.concatenate([np.full((50, 4, 4, 3), 0.2), np.full((50, 4, 4, 3), 0.8)]).astype(np.float32)
    unlabelled = Dataset(x, np.full(100, -1), None, "t", PixelRange.parse("0-1"), False)

    def sure_only_on_0_255(inputs):  # confident where pixels look like 0-255, unsure elsewhere
        level = inputs.mean(axis=(1, 2, 3))
        p = np.where(level > 20, 0.95, 0.55)
        return np.stack([p, 1 - p], axis=1).astype(np.float32)

    best, scores = pick_pixel_range(sure_only_on_0_255, unlabelled)
    assert best.name == "0-255" and scores["0-255"] == pytest.approx(0.95)


# --------------------------------------------------------------------------- properties

_DTYPES = st.sampled_from(["uint8", "int16", "int64", "float16", "float32", "float64", "bool", "complex64", "<U2"])


@st.composite
def _npz_contents(draw):
    arrays = {}
    n = draw(st.integers(0, 4))
    likely = st.sampled_from([True, True, True, False])
    chances = {"x": likely, "y": likely, "class_names": st.booleans(), "other": st.booleans()}
    keys = [key for key, chance in chances.items() if draw(chance)]
    for key in keys:
        if key == "x":
            shape = draw(st.sampled_from([(n, 3, 3), (n, 2, 3, 1), (n, 2, 2, 3), (n, 3), (n, 2, 2, 5), (n,)]))
        elif key == "y":
            shape = draw(st.sampled_from([(n,), (max(0, n + draw(st.integers(-1, 1))),), (n, 3), (n, 1), ()]))
        else:
            shape = (draw(st.integers(0, 4)),)
        dtype = draw(st.sampled_from(["uint8", "float32"]) | _DTYPES)
        arrays[key] = draw(hnp.arrays(dtype, shape))
    return arrays


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_npz_contents(), st.none() | st.integers(1, 3), st.none() | st.integers(0, 400))
def test_load_npz_property(arrays, max_samples, cut):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.npz"
        np.savez(path, **arrays)
        if cut is not None:
            path.write_bytes(path.read_bytes()[:cut])
        try:
            ds = load_npz(path, max_samples=max_samples)
        except InvalidDataError as error:
            assert str(error) and "\n" not in str(error)
            return
    assert ds.x.dtype == np.float32 and ds.x.ndim == 4 and len(ds.x) == len(ds.y) > 0
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0
    assert ds.y.dtype == np.int64 and ds.y.min() >= 0


_NAMES = st.lists(
    st.sampled_from(["a", "b", "c", "..", "__MACOSX", ".hidden", "x.png", "y.jpg", "z.txt", "", "dir"]),
    min_size=1,
    max_size=4,
).map("/".join)


# Mostly plausible layouts (wrapper?/class/file) so valid datasets come up, plus odd names.
_PLAUSIBLE = st.builds(
    lambda wrap, cls, file: "/".join(p for p in (wrap, cls, file) if p),
    st.sampled_from(["", "", "data"]),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["1.png", "2.jpg", "3.txt", "4.png", ".5.png"]),
)


@st.composite
def _zip_bytes(draw):
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))
    buffer = io.BytesIO()
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression) as archive:
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are part of the test
        for name in draw(st.lists(_PLAUSIBLE | _PLAUSIBLE | _NAMES, max_size=8)):
            content = draw(st.sampled_from([_TINY_PNG, _TINY_PNG, _TINY_GREY, b""]) | st.binary(max_size=60))
            archive.writestr(name or "empty", content)
    raw = buffer.getvalue()
    if draw(st.integers(0, 3)) == 0 and raw:  # flip a few bytes somewhere
        position = draw(st.integers(0, len(raw) - 1))
        raw = raw[:position] + draw(st.binary(min_size=1, max_size=4)) + raw[position + 1 :]
    return raw


_TINY_PNG = image_bytes((10, 200, 30), size=(3, 2))
_TINY_GREY = image_bytes(77, size=(2, 5), mode="L")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_zip_bytes(), st.sampled_from([1, 3]))
def test_load_image_zip_property(raw, channels):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.zip"
        path.write_bytes(raw)
        try:
            ds = load_image_zip(path, (4, 5), channels)
        except InvalidDataError as error:
            assert str(error) and "\n" not in str(error)
            return
    assert ds.x.shape[1:] == (4, 5, channels) and ds.x.dtype == np.float32
    assert len(ds.x) == len(ds.y) and len(set(ds.y.tolist())) >= 2
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0


def test_an_npz_whose_array_inflates_a_hundredfold_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros((2000, 32, 32, 3), np.uint8), y=np.zeros(2000, np.int64))
    with pytest.raises(InvalidDataError, match="looks like a zip bomb"):
        load_npz(path)
