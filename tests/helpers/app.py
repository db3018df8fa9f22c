"""The dashboard driven with Streamlit's AppTest (no browser): its pages, a fresh session, uploads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.paths import ROOT

APP = str(ROOT / "app.py")
MODEL_PAGE = "pages/1_Model_and_data.py"
REVERSE_PAGE = "pages/2_Reverse_engineer.py"
SCAN_PAGE = "pages/3_Scan_and_compare.py"
RUNS_PAGE = "pages/4_Runs.py"
REPAIR_PAGE = "pages/5_Repair.py"
AUDIT_PAGE = "pages/6_Audit.py"


def use_data_dir(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """Point the dashboard and the store at ``folder``, with no password or reviewer mode set."""
    monkeypatch.setenv("NC_DATA_DIR", str(folder))
    for name in ("NC_PASSWORD", "NC_REVIEWER_MODE", "NC_SAMPLES_DIR"):
        monkeypatch.delenv(name, raising=False)
    return folder


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=90)


def store(folder: Path):
    from nc_core.runs.store import RunStore

    return RunStore(folder)


def literal(value: object) -> str:
    """What a Markdown string shows: backslash escapes (user text goes through dashboard.text.plain) undone."""
    return re.sub(r"\\(.)", r"\1", str(value))


def upload(at: AppTest, model: tuple[str, bytes], data: tuple[str, bytes]) -> AppTest:
    at.radio(key="model_source").set_value("Upload your own").run()
    at.file_uploader(key="upload_model").set_value((*model, "application/octet-stream"))
    at.file_uploader(key="upload_data").set_value((*data, "application/octet-stream"))
    return at.button(key="upload_use").click().run()
