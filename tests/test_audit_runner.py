"""The audit runner on an embedded local Ray: real scans of the shipped MNIST twins, stored as runs,
resumed without redoing finished models, a missing model reported as its own row."""
import pytest

pytest.importorskip("ray")

from nc_core.audit.manifest import AuditEntry  # noqa: E402
from nc_core.audit.runner import AuditSettings, run_audit  # noqa: E402
from nc_core.cleanse import CleanseConfig  # noqa: E402
from nc_core.store import RunStore  # noqa: E402
from conftest import sample_path  # noqa: E402

SHORT = AuditSettings(config=CleanseConfig(epochs=6, screen_epochs=3, confirm_runs=0))


def test_an_audit_stores_every_model_as_a_scan_run_and_resumes(tmp_path):
    data = sample_path("mnist_data.npz")
    entries = [AuditEntry(sample_path("mnist_backdoored.keras"), data, "backdoored", (7,)),
               AuditEntry(sample_path("mnist_clean.keras"), data, "clean"),
               AuditEntry(tmp_path / "gone.keras", data, "clean")]
    store = RunStore(tmp_path / "nc_data")
    seen = []
    result = run_audit(entries, SHORT, store, workers=2, on_row=lambda row, done, total: seen.append((done, total)))
    rows = {row.model: row for row in result.rows}
    assert rows["gone.keras"].status == "missing" and "does not exist" in rows["gone.keras"].error
    for name in ("mnist_backdoored.keras", "mnist_clean.keras"):
        record = store.get(rows[name].run_id)
        assert record.kind == "scan" and record.status == "done" and record.settings["audit"] == result.audit_id
        assert rows[name].verdict == record.verdict and store.load_report(record.id) is not None
    assert seen[-1] == (3, 3)
    assert result.metrics["models"] == 2 and result.metrics["clean"] == 1

    again = run_audit(entries, SHORT, store, workers=2)  # the same audit: nothing is scanned again
    assert again.audit_id == result.audit_id and again.seconds < 5
    assert [r.run_id for r in again.rows] == [r.run_id for r in result.rows]
    assert len(store.list_runs()) == 2
