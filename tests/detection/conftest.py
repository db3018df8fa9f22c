"""Fixtures of the detection tests: the shipped signs twins, loaded once per session (the mnist
twins, which other folders use too, are in tests/conftest.py)."""

import pytest

from tests.helpers.samples import load_sample


@pytest.fixture(scope="session")
def signs_backdoored():
    return load_sample("signs_backdoored")


@pytest.fixture(scope="session")
def signs_clean():
    return load_sample("signs_clean")
