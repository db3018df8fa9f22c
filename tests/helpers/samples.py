"""The shipped sample models (sample_models/), loaded as the CLI and the dashboard load them."""

from __future__ import annotations

from tests.helpers.paths import SAMPLES


def load_sample(model: str):
    """A shipped sample model with its data, loaded as the CLI and the dashboard load them."""
    from nc_core.loading.inputs import load_inputs

    dataset = model.split("_")[0]
    return load_inputs(SAMPLES / f"{model}.keras", SAMPLES / f"{dataset}_data.npz")
