"""Shared fixtures: the shipped sample models, loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"


def sample_path(name: str) -> Path:
    return SAMPLES / name


def load_sample(model: str):
    """A shipped sample model with its data, loaded as the CLI and the dashboard load them."""
    from nc_core.loading.inputs import load_inputs

    dataset = model.split("_")[0]
    return load_inputs(SAMPLES / f"{model}.keras", SAMPLES / f"{dataset}_data.npz")


@pytest.fixture(scope="session")
def mnist_backdoored():
    return load_sample("mnist_backdoored")


@pytest.fixture(scope="session")
def mnist_clean():
    return load_sample("mnist_clean")


@pytest.fixture(scope="session")
def signs_backdoored():
    return load_sample("signs_backdoored")


@pytest.fixture(scope="session")
def signs_clean():
    return load_sample("signs_clean")


def use_data_dir(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """Point the dashboard and the store at ``folder``, with no password or reviewer mode set."""
    monkeypatch.setenv("NC_DATA_DIR", str(folder))
    for name in ("NC_PASSWORD", "NC_REVIEWER_MODE", "NC_SAMPLES_DIR"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A data directory of the test's own (runs, uploads, audits)."""
    return use_data_dir(monkeypatch, tmp_path / "nc_data")
