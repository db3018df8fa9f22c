"""A run's settings as a typed spec: what the store keeps is the JSON it always kept, older runs
read back, and an unreadable imported setting never breaks a page."""

from __future__ import annotations

import json

from nc_core.detection.detect import DetectionRule
from nc_core.optimise.config import CleanseConfig
from nc_core.repair.config import RepairConfig
from nc_core.runs.spec import RepairSpec, ScanSpec
from nc_core.runs.store import RunStore

#: Settings as the dashboard stored them before the spec existed (0.12), rule at the top level.
STORED_0_12 = {
    "config": CleanseConfig(epochs=7).to_dict(),
    "classes": [1, 3],
    "pixel_range": "0-255",
    "max_samples": 500,
    **DetectionRule(threshold=2.5).to_dict(),
    "class_names": ["a", "b", "c", "d"],
    "clean_accuracy": 0.97,
    "model_file": "model.keras",
    "data_file": "data.npz",
}


def test_a_spec_writes_the_settings_the_store_always_kept_and_reads_them_back():
    spec = ScanSpec.from_settings(STORED_0_12)
    assert spec.config.epochs == 7 and spec.rule.threshold == 2.5 and spec.classes == (1, 3)
    assert spec.class_names == ("a", "b", "c", "d") and spec.pixel_range == "0-255"
    assert spec.to_settings() == STORED_0_12
    assert ScanSpec.from_settings(json.loads(json.dumps(spec.to_settings()))) == spec


def test_a_repair_spec_nests_the_scan_it_repairs():
    spec = RepairSpec(ScanSpec.from_settings(STORED_0_12), "abc123", RepairConfig(epochs=4), True, {"target": 3})
    settings = spec.to_settings()
    assert settings["source_run"] == "abc123" and settings["repair"]["epochs"] == 4 and settings["classes"] == [1, 3]
    assert RepairSpec.from_settings(settings) == spec


def test_old_or_unreadable_settings_give_defaults_not_errors(tmp_path):
    assert ScanSpec.from_settings({}) == ScanSpec()
    assert ScanSpec.from_settings({"config": {"epochs": 3, "gone_in_0_9": 1}}).config.epochs == 3
    store = RunStore(tmp_path / "data")
    run_id = store.create_run("scan", "m", "d", {"threshold": "not a number", "classes": ["x"]})
    assert store.get(run_id).spec == ScanSpec(), "an imported bundle's odd settings are shown with defaults"


def test_a_run_records_its_spec_and_a_repair_its_scan_s(tmp_path):
    store = RunStore(tmp_path / "data")
    scan = store.create_run("scan", "m", "d", ScanSpec(config=CleanseConfig(epochs=5), classes=(2,)).to_settings())
    repair = store.create_run("repair", "m", "d", RepairSpec(store.get(scan).spec, scan).to_settings())
    assert store.get(scan).spec.config.epochs == 5
    assert store.get(repair).scan_spec.classes == (2,) and store.get(repair).spec.source_run == scan


def test_a_scan_sent_to_ray_keeps_where_and_older_runs_stay_on_the_machine():
    spec = ScanSpec.from_settings(STORED_0_12).replace(ray="local:2")
    assert spec.to_settings() == {**STORED_0_12, "ray": "local:2"}
    assert ScanSpec.from_settings(json.loads(json.dumps(spec.to_settings()))) == spec
    assert ScanSpec.from_settings(STORED_0_12).ray is None and "ray" not in ScanSpec().to_settings()
