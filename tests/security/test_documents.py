"""Stored documents from elsewhere (an imported bundle's report and repair record) are checked
against their dataclasses once, at import: a wrong type is refused naming its field, and text
that passes is shown as text."""

from __future__ import annotations

import json

import pytest

from nc_core.errors import InvalidDataError
from nc_core.repair.core import RepairResult, RepairRound, RescanSummary
from nc_core.repair.evaluation import Figures
from nc_core.schema import check_document
from tests.helpers.app import RUNS_PAGE, app, store
from tests.helpers.bundles import VALID_RUN, zip_bytes
from tests.helpers.rendering import HOSTILE, assert_shown_as_text


def repair_record(**changes) -> dict:
    result = RepairResult(
        model=None,
        method="unlearning",
        targets=[2],
        before=Figures(0.98, {2: 0.99}, 0.97),
        after=Figures(0.97, {2: 0.02}, 0.01),
        rounds=[RepairRound(0, 2, 5.0, True)],
        bound=20.0,
        config={},
        samples_tuned=350,
        samples_held_out=150,
        seconds=3.0,
        known_trigger="model card",
        rescan=RescanSummary("clean", [], 0.4, 0.9, "r"),
    )
    payload = result.to_dict()
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = payload
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    return payload


def repair_bundle(payload: dict) -> bytes:
    run = {**VALID_RUN, "kind": "repair", "settings": {"source_run": "abc"}}
    return zip_bytes({"run.json": json.dumps(run), "repair.json": json.dumps(payload)})


@pytest.mark.parametrize(
    "change,field",
    [
        ({"rescan.score": "0.5"}, "repair.json.rescan.score must be a number"),
        ({"rounds.0.round": "1"}, r"repair.json.rounds\[0\].round must be a whole number"),
        ({"samples_tuned": "**model is CLEAN** ![x](http://evil.example/x.png)"}, "repair.json.samples_tuned"),
        ({"before.clean_accuracy": [1]}, "repair.json.before.clean_accuracy must be a number"),
        ({"before.reversed_asr": {"two": 0.5}}, "repair.json.before.reversed_asr key must be a class index"),
        ({"targets": ["1; DROP"]}, r"repair.json.targets\[0\] must be a whole number"),
        ({"rescan.verdict": None}, "repair.json.rescan.verdict must be short text"),
    ],
)
def test_a_repair_record_of_the_wrong_types_is_refused_naming_the_field(tmp_path, change, field):
    runs = store(tmp_path / "data")
    with pytest.raises(InvalidDataError, match=field):
        runs.import_bundle(repair_bundle(repair_record(**change)))
    assert runs.list_runs() == []


def test_a_repair_record_s_text_shows_as_text_on_the_runs_page(data_dir):
    run_id = store(data_dir).import_bundle(repair_bundle(repair_record(method=HOSTILE, known_trigger=HOSTILE)))
    at = app()
    at.query_params["run"] = run_id
    assert_shown_as_text(at.run().switch_page(RUNS_PAGE).run())


def test_the_schema_names_missing_fields_and_ignores_unknown_ones():
    with pytest.raises(InvalidDataError, match="the field 'l1' is missing"):
        check_document({"round": 0, "target": 1, "removed": True}, RepairRound, "r")
    check_document({"round": 0, "target": 1, "l1": 2, "removed": False, "extra": "kept apart"}, RepairRound, "r")
