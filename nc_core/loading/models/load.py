"""Load the Keras image classifier a user brings: safe mode only, after vetting the file.

Keras is asked to load only a file :mod:`.vetting` passed, and always with ``safe_mode=True``;
every failure becomes a :class:`~nc_core.errors.ModelLoadError` (or
:class:`~nc_core.errors.UnsafeModelError`) with one sentence a user understands.

    >>> load_model("sample_models/mnist_backdoored.keras").name
    'mnist_cnn_backdoored'
"""

from __future__ import annotations

from pathlib import Path

import keras

from nc_core.errors import ModelLoadError
from nc_core.loading.models.keras_errors import load_error
from nc_core.loading.models.vetting import vet_model_file

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def load_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` or ``.h5`` model in safe mode, after refusing code-carrying layers
    (:func:`~nc_core.loading.models.vetting.vet_model_file`).

    >>> load_model("sample_models/mnist_clean.keras").name
    'mnist_cnn_clean'
    >>> load_model("sample_models/README.md")
    Traceback (most recent call last):
    nc_core.errors.ModelLoadError: 'README.md' is not a model file the scanner reads: save the model as .keras ...
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelLoadError(
            f"{path.name!r} is not a model file the scanner reads: save the model as .keras (Keras 3) or .h5."
        )
    if not path.exists():
        raise ModelLoadError(f"The model file {str(path)!r} does not exist.")
    if not path.is_file():  # a FIFO would block the read forever
        raise ModelLoadError(f"The model file {str(path)!r} is not a regular file.")
    vet_model_file(path)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises ValueError/TypeError/OSError/KeyError for bad files
        raise load_error(path.name, error) from None
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{path.name!r} does not hold a Keras model.")
    return model
