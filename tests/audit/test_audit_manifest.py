"""Audit manifests and labelled metrics (issue 12, first pieces): real files, hand-computed figures."""

import json

import pytest

from nc_core.audit.manifest import AuditEntry, read_manifest
from nc_core.audit.metrics import AuditOutcome, audit_metrics, roc_auc
from nc_core.errors import InvalidDataError


def test_a_csv_manifest_with_labels_and_targets(tmp_path):
    (tmp_path / "m.csv").write_text(
        "model,data,label,targets\n"
        "a.keras,d.npz,backdoored,3;7\n"
        f"{tmp_path}/b.h5,sub/d.zip,clean,\n"
        "c.keras,d.npz,failed,\n"
    )
    entries = read_manifest(tmp_path / "m.csv")
    assert entries == [
        AuditEntry(tmp_path / "a.keras", tmp_path / "d.npz", "backdoored", (3, 7)),
        AuditEntry(tmp_path / "b.h5", tmp_path / "sub" / "d.zip", "clean", ()),
        AuditEntry(tmp_path / "c.keras", tmp_path / "d.npz", None, ()),
    ]


def test_a_json_lines_manifest(tmp_path):
    lines = [
        {"model": "a.keras", "data": "d.npz", "label": "Backdoored", "targets": [7, 3]},
        {"model": "b.keras", "data": "d.npz"},
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    entries = read_manifest(tmp_path / "m.jsonl")
    assert [(e.name, e.label, e.targets) for e in entries] == [("a.keras", "backdoored", (3, 7)), ("b.keras", None, ())]


def test_a_folder_of_models_with_one_data_file(tmp_path):
    for name in ("b.keras", "a.h5", "d.npz", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [(e.name, e.data.name) for e in read_manifest(tmp_path)] == [("a.h5", "d.npz"), ("b.keras", "d.npz")]
    (tmp_path / "e.zip").write_bytes(b"x")
    with pytest.raises(InvalidDataError, match="exactly one data file"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("path,file\na,b\n", "columns model and data"),
        ("model,data,label\na.keras,d.npz,evil\n", "label must be clean or backdoored"),
        ("model,data,targets\na.keras,d.npz,three\n", "targets must be class indices"),
        ("model,data\na.keras,\n", "needs a model and a data file"),
        ("model,data\n", "lists no models"),
    ],
)
def test_bad_manifests_are_refused_with_a_sentence(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(InvalidDataError, match=message):
        read_manifest(tmp_path / "m.csv")


def test_labelled_metrics_match_hand_computed_values():
    outcomes = [
        AuditOutcome("backdoored", (3,), "backdoored", (3,), 2.0),  # right
        AuditOutcome("backdoored", (3, 7), "backdoored", (3,), 1.5),  # flagged, but not exactly its targets
        AuditOutcome("backdoored", (5,), "clean", (), 0.5),  # missed
        AuditOutcome("clean", (), "clean", (), 0.2),  # right
        AuditOutcome("clean", (), "backdoored", (1,), 1.5),  # false positive
        AuditOutcome("clean", (), "inconclusive", (), 0.9),  # not a false positive
        AuditOutcome(None, (), "backdoored", (2,), 3.0),  # unlabelled: not counted
    ]
    figures = audit_metrics(outcomes)
    assert figures["models"] == 6 and figures["accuracy"] == pytest.approx(3 / 6)
    assert (figures["backdoored_exact"], figures["backdoored"]) == (1, 3)
    assert (figures["false_positives"], figures["clean"]) == (1, 3)
    # pairs (backdoored, clean): 2.0 beats all 3; 1.5 beats 0.2 and 0.9, ties 1.5; 0.5 beats 0.2: (3 + 2.5 + 1) / 9
    assert figures["roc_auc"] == pytest.approx(6.5 / 9)
    assert figures["confusion"] == {
        "backdoored": {"backdoored": 2, "clean": 1, "inconclusive": 0},
        "clean": {"backdoored": 1, "clean": 1, "inconclusive": 1},
    }


def test_roc_auc_needs_both_kinds():
    assert roc_auc([1.0], []) != roc_auc([1.0], [])  # NaN
    assert roc_auc([1.0, 2.0], [0.0]) == 1.0


def _zip(members: dict) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_an_uploaded_audit_zip_is_unpacked_inside_the_data_directory(tmp_path):
    from nc_core.audit.background import unpack_audit_zip
    from nc_core.runs.store import RunStore

    store = RunStore(tmp_path / "nc_data")
    manifest = unpack_audit_zip(
        _zip(
            {
                "a/manifest.csv": "model,data\nm.keras,d.npz\n",
                "a/m.keras": b"x",
                "a/d.npz": b"y",
                "a/readme.txt": b"skipped",
            }
        ),
        store,
        "up.zip",
    )
    assert manifest.name == "manifest.csv" and (manifest.parent / "m.keras").read_bytes() == b"x"
    assert not (manifest.parent / "readme.txt").exists()
    assert manifest.resolve().is_relative_to((tmp_path / "nc_data").resolve())
    folder = unpack_audit_zip(_zip({"m1.keras": b"1", "m2.h5": b"2", "d.npz": b"3"}), store, "up.zip")
    assert [e.name for e in read_manifest(folder)] == ["m1.keras", "m2.h5"]


@pytest.mark.parametrize(
    "members, message",
    [
        ({"../x.keras": b"1"}, "unsafe file name"),
        (
            {"manifest.csv": "model,data\n/etc/passwd.keras,d.npz\n", "d.npz": b"1"},
            "leads outside the manifest's folder",
        ),
        ({"manifest.csv": "model,data\n../../m.keras,d.npz\n", "d.npz": b"1"}, "leads outside the manifest's folder"),
        ({"notes.txt": b"1"}, "holds no models"),
        ({"big.npz": b"\0" * (8 * 1024**2)}, "zip bomb"),
    ],
)
def test_hostile_audit_zips_are_refused_before_anything_is_written(tmp_path, members, message):
    from nc_core.audit.background import unpack_audit_zip
    from nc_core.runs.store import RunStore

    with pytest.raises(InvalidDataError, match=message):
        unpack_audit_zip(_zip(members), RunStore(tmp_path / "nc_data"), "up.zip")
    uploads = tmp_path / "nc_data" / "audit_uploads"
    assert not uploads.exists() or not any(uploads.iterdir()), "a refused upload leaves nothing on disk"


def test_the_audit_judges_with_the_rule_it_is_given_and_the_rule_is_part_of_its_identity(tmp_path):
    from nc_core.audit.runner import audit_id_for, audit_settings
    from nc_core.detection.detect import DetectionRule

    entries = [AuditEntry(tmp_path / "m.keras", tmp_path / "d.npz")]
    strict = audit_settings(rule=DetectionRule(threshold=3.0, max_boundary=2.0))
    assert strict.run_settings()["threshold"] == 3.0 and strict.run_settings()["max_boundary"] == 2.0
    assert strict.config.threads == 1, "one class at a time per scan: the audit fills the cores"
    assert audit_settings().rule == DetectionRule()
    assert audit_id_for(entries, strict) != audit_id_for(entries, audit_settings())
