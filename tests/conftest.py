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


@pytest.fixture(scope="session")
def mnist_backdoored():
    from nc_core.inputs import load_inputs

    return load_inputs(SAMPLES / "mnist_backdoored.keras", SAMPLES / "mnist_data.npz")


@pytest.fixture(scope="session")
def mnist_clean():
    from nc_core.inputs import load_inputs

    return load_inputs(SAMPLES / "mnist_clean.keras", SAMPLES / "mnist_data.npz")


@pytest.fixture(scope="session")
def signs_backdoored():
    from nc_core.inputs import load_inputs

    return load_inputs(SAMPLES / "signs_backdoored.keras", SAMPLES / "signs_data.npz")


@pytest.fixture(scope="session")
def signs_clean():
    from nc_core.inputs import load_inputs

    return load_inputs(SAMPLES / "signs_clean.keras", SAMPLES / "signs_data.npz")
