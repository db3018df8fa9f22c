"""Triggered samples: made once with the model, stored with the run, carried by its bundle, and
checked when a bundle brings them from elsewhere."""

import io
import json
import zipfile

import numpy as np
import pytest

from nc_core.detection.margin import MarginResult
from nc_core.detection.report import make_report
from nc_core.detection.samples import THUMBNAIL_SIDE, TriggeredSamples, pick_samples, thumbnails, triggered_samples
from nc_core.errors import InvalidDataError
from nc_core.repair.triggers import trigger_from_card
from nc_core.runs.store import RunStore
from tests.helpers.bundles import VALID_RUN, npz_bytes, zip_bytes
from tests.helpers.paths import SAMPLES
from tests.helpers.results import random_result


def test_the_real_trigger_sends_the_stamped_samples_to_its_target(mnist_backdoored):
    card = json.loads((SAMPLES / "mnist_backdoored.json").read_text())
    trigger = trigger_from_card(card, mnist_backdoored.info.input_shape)
    samples = triggered_samples(mnist_backdoored.classifier, mnist_backdoored.data, trigger)

    assert len(samples) == 6 and trigger.target not in samples.labels.tolist()
    assert samples.labels.tolist() == sorted(samples.labels.tolist()), "one sample of each other class, in order"
    clean, stamped = samples.predicted[:6], samples.predicted[6:]
    assert np.mean(clean == samples.labels) >= 5 / 6, "the model reads clean digits right"
    assert np.mean(stamped == trigger.target) >= 5 / 6, "and the real trigger sends them to the target"
    assert samples.clean.dtype == np.uint8 and samples.clean.shape == (6, 28, 28, 1)
    assert not np.array_equal(samples.clean, samples.triggered)
    assert samples.caption(0, triggered=True).startswith(f"{samples.labels[0]} → {trigger.target} (")
    assert samples.first(3).predicted.tolist() == [*clean[:3], *stamped[:3]]


def test_a_class_with_no_other_class_in_the_data_has_no_samples():
    assert pick_samples(np.array([4, 4, 4]), target=4) == []
    assert pick_samples(np.array([7, 1, 1, 0, 7]), target=7) == [3, 1]


def test_large_inputs_are_kept_as_small_thumbnails():
    big = np.random.default_rng(0).random((2, 224, 160, 3)).astype(np.float32)
    small = thumbnails(big)
    assert small.dtype == np.uint8 and small.shape == (2, THUMBNAIL_SIDE, 69, 3)
    assert thumbnails(big[..., :2]).shape[-1] == 1, "two-channel inputs keep their first channel"


def _samples(target: int, n: int = 3) -> TriggeredSamples:
    rng = np.random.default_rng(target)
    images = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    return TriggeredSamples(
        target,
        np.arange(n, dtype=np.int64),
        images,
        255 - images,
        np.array([*range(n), *[target] * n], np.int64),
        np.full(2 * n, 0.9, np.float32),
    )


def test_samples_and_margin_inputs_travel_with_an_exported_bundle(tmp_path):
    store = RunStore(tmp_path / "data")
    run_id = store.create_run("scan", "m.keras", "d.npz", {"config": {"epochs": 3}})
    results = [random_result(k, l1) for k, l1 in enumerate([40.0, 41.0, 5.0, 39.0])]
    margin = MarginResult(
        [1.0, 2.0, 9.0, 1.5],
        [0.5, 0.4, 1e-6, 0.45],
        [0.1, 0.2, 3.0, 0.1],
        [2],
        images=[np.full((16, 16, 3), k / 4, np.float32) for k in range(4)],
    )
    store.save_margin(run_id, margin)
    for r in results:
        store.save_class_result(run_id, r)
        store.save_samples(run_id, _samples(r.target))
    store.save_report(run_id, make_report(results, "m.keras", "d.npz", margin=margin))
    store.set_status(run_id, "done")

    copy_id = store.import_bundle(store.export_bundle(run_id))
    for r in results:
        copied = store.stored_samples(copy_id, r.target)
        np.testing.assert_array_equal(copied.triggered, _samples(r.target).triggered)
        assert copied.caption(1, triggered=True) == f"1 → {r.target} (90%)"
    images = store.load_report(copy_id).margin.images
    assert len(images) == 4 and float(images[3].mean()) == pytest.approx(0.75, abs=1e-3)
    assert store.stored_samples(copy_id, 99) is None


@pytest.mark.parametrize(
    "member,content,needle",
    [
        ("samples/1.npz", npz_bytes(labels=np.zeros(2, np.int64)), "triggered samples"),
        ("samples/1.npz", _samples(1).to_npz().replace(b"labels", b"lab3ls"), "triggered samples"),
        (
            "samples/1.npz",
            npz_bytes(
                **{
                    **{k: v for k, v in vars(_samples(1)).items() if k != "target"},
                    "confidence": np.full(6, 7.0, np.float32),
                }
            ),
            "triggered samples",
        ),
        ("samples/1.npz", npz_bytes(**{k: v for k, v in vars(_samples(1)).items()}), "triggered samples"),
        (
            "samples/1.npz",
            npz_bytes(
                labels=np.zeros(1, np.int64),
                clean=np.zeros((1, 900, 900, 3), np.uint8),
                triggered=np.zeros((1, 900, 900, 3), np.uint8),
                predicted=np.zeros(2, np.int64),
                confidence=np.zeros(2, np.float32),
            ),
            "triggered samples",
        ),
        ("samples/1.npz", b"not an npz", "not a readable array"),
        ("margin.npz", npz_bytes(images=np.full((2, 8, 8, 1), np.nan, np.float32)), "max-margin inputs"),
        ("margin.npz", npz_bytes(images=np.zeros((2, 8, 8, 1), np.float32), other=np.zeros(1)), "max-margin inputs"),
        ("samples/../../x.npz", b"", "unexpected file"),
    ],
)
def test_hostile_samples_or_margin_inputs_in_a_bundle_are_refused(tmp_path, member, content, needle):
    store = RunStore(tmp_path / "data")
    with pytest.raises(InvalidDataError, match=needle):
        store.import_bundle(zip_bytes({"run.json": json.dumps(VALID_RUN), member: content}))
    assert store.list_runs() == [] and not any((tmp_path / "data" / "runs").iterdir())


def test_a_sample_file_that_inflates_past_the_bundle_budget_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from nc_core.loading import limits

    monkeypatch.setattr(limits, "MAX_BUNDLE_UNPACKED_BYTES", 1024**2)
    huge = io.BytesIO()
    with zipfile.ZipFile(huge, "w", zipfile.ZIP_DEFLATED) as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.random.default_rng(0).integers(0, 2, (80, 96, 96, 3), dtype=np.uint8))  # 2.2 MB, ~8:1
        archive.writestr("clean.npy", buffer.getvalue())
    with pytest.raises(InvalidDataError, match="unpack to more than"):
        RunStore(tmp_path / "data").import_bundle(
            zip_bytes({"run.json": json.dumps(VALID_RUN), "samples/1.npz": huge.getvalue()})
        )
