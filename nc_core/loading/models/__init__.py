"""The Keras image classifier a user brings: vetted, loaded in safe mode, inspected, used.

Model files come from strangers, so the architecture is read and vetted *before* Keras sees it
and loading is safe-mode only. Modules: :mod:`.vetting` (the architecture read without Keras,
code refused, weights bounded), :mod:`.load` (``load_model``), :mod:`.keras_errors` (what Keras
raised, as a sentence), :mod:`.inspection` (``inspect_model``, ``ModelInfo``, ``as_classifier``)
and :mod:`.prediction` (``predict``, ``compiled_forward``, ``clean_accuracy``).

    >>> model = load_model("sample_models/mnist_backdoored.keras")
    >>> info = inspect_model(model); info
    ModelInfo(input_shape=(28, 28, 1), num_classes=10, num_params=105866, outputs_probabilities=True,
              name='mnist_cnn_backdoored')
    >>> classifier = as_classifier(model, info)  # the model itself: it outputs probabilities already
    >>> predict(classifier, data.model_inputs()[:2]).shape  # data: the sample's digits
    (2, 10)
"""

from nc_core.loading.models.inspection import ModelInfo, as_classifier, inspect_model
from nc_core.loading.models.load import MODEL_SUFFIXES, load_model
from nc_core.loading.models.prediction import clean_accuracy, compiled_forward, predict
from nc_core.loading.models.vetting import refuse_unsafe_config

__all__ = [
    "MODEL_SUFFIXES",
    "ModelInfo",
    "as_classifier",
    "clean_accuracy",
    "compiled_forward",
    "inspect_model",
    "load_model",
    "predict",
    "refuse_unsafe_config",
]
