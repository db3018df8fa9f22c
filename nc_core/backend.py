"""What differs between Keras 3's backends, as the optimisers need it: gradients, compilation, loops.

Keras 3 runs one ``.keras`` model on TensorFlow, JAX and PyTorch, chosen by ``KERAS_BACKEND``
before Keras is first imported. A model's forward pass is the same on all three, but Keras has no
backend-neutral way to take a gradient with respect to something that is not a layer's weight (a
trigger, an input image) or to compile a training loop: each backend does that its own way
(``tf.GradientTape`` + ``tf.function``, ``jax.value_and_grad`` + ``jax.jit``, ``torch.autograd``).
Those few lines live here, so the engines are written once in ``keras.ops`` as pure functions of
their state, and nothing else in ``nc_core`` imports a backend. TensorFlow stays the default.

    >>> backend_name()
    'tensorflow'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from nc_core.errors import InvalidParameterError

BACKENDS = ("tensorflow", "jax", "torch")


def backend_name() -> str:
    """The Keras backend this process runs on (``KERAS_BACKEND``, fixed at Keras' first import)."""
    return keras.backend.backend()


def device_name() -> str:
    """The device the backend computes on, as a person reads it: ``"CPU"`` or ``"GPU (NVIDIA H100)"``.

    Recorded with every scan, so a figure or a verdict says where it came from.
    """
    backend = backend_name()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return "CPU" if device.platform == "cpu" else f"{device.platform.upper()} ({device.device_kind})"
    if backend == "torch":
        import torch

        return f"GPU ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "CPU"
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return f"GPU ({gpus[0].name})" if gpus else "CPU"


def require_tensorflow(what: str) -> None:
    """Refuse, with a sentence, a feature that only runs on TensorFlow (the tutorial's engine, threads)."""
    if backend_name() != "tensorflow":
        raise InvalidParameterError(
            f"{what} runs on the TensorFlow backend only; this process runs Keras on {backend_name()!r} "
            "(unset KERAS_BACKEND or set it to tensorflow)."
        )


def model_weights(model: keras.Model) -> list:
    """The model's weight values now, to pass to :func:`classify` as an argument of a compiled step.

    Passing them (rather than letting a trace capture them) keeps them out of the compiled program
    on JAX, where a captured array becomes a constant copied into every compilation. They follow
    ``model.variables``, whose order does not change when the model is frozen or unfrozen.
    """
    values = [variable.value for variable in model.variables]
    return [value.detach() for value in values] if backend_name() == "torch" else values


def classify(model: keras.Model, weights: list, x: Any) -> Any:
    """The model's outputs on ``x`` with the given weight values, in inference mode, on any backend."""
    by_variable = {id(variable): value for variable, value in zip(model.variables, weights)}
    trainable = [by_variable[id(variable)] for variable in model.trainable_variables]
    frozen = [by_variable[id(variable)] for variable in model.non_trainable_variables]
    outputs, _ = model.stateless_call(trainable, frozen, x, training=False)
    return outputs


def value_and_grad(fn: Callable[..., tuple[Any, Any]]) -> Callable[..., tuple[tuple[Any, Any], list]]:
    """``fn(params, *args) -> (value, aux)`` into ``g(params, *args) -> ((value, aux), grads)``.

    ``params`` is a list of tensors; ``grads`` holds the gradient of ``value`` for each.

        >>> grad = value_and_grad(lambda p, s: (keras.ops.sum(p[0] * s), None))
        >>> [np.asarray(g) for g in grad([keras.ops.ones(2)], 3.0)[1]]
        [array([3., 3.], dtype=float32)]
    """
    backend = backend_name()
    if backend == "jax":
        import jax

        return jax.value_and_grad(fn, has_aux=True)
    if backend == "torch":
        import torch

        def torch_grad(params, *args):
            params = [p.detach().requires_grad_(True) for p in params]
            value, aux = fn(params, *args)
            grads = torch.autograd.grad(value, params)
            detach = lambda t: t.detach() if isinstance(t, torch.Tensor) else t  # noqa: E731
            return (value.detach(), keras.tree.map_structure(detach, aux)), list(grads)

        return torch_grad
    import tensorflow as tf

    def tf_grad(params, *args):
        with tf.GradientTape() as tape:
            tape.watch(params)
            value, aux = fn(params, *args)
        return (value, aux), tape.gradient(value, params)

    return tf_grad


def compile_function(fn: Callable) -> Callable:
    """``fn`` compiled by the backend: ``jax.jit``, ``tf.function``, or as it is on PyTorch.

    PyTorch runs eagerly here: ``torch.compile`` costs tens of seconds before the first step,
    more than a whole CPU scan saves.
    """
    backend = backend_name()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    return fn


def scan_steps(step: Callable[[Any, Any], tuple[Any, Any]], state: Any, rows: Any) -> tuple[Any, Any]:
    """``step(state, row) -> (state, metrics)`` over the rows of ``rows`` in order; the
    final state and the metrics summed. Inside :func:`compile_function`, one compiled loop."""
    backend = backend_name()
    if backend == "jax":
        import jax

        def body(carry, row):
            state, totals = carry
            state, metrics = step(state, row)
            return (state, totals + metrics), None

        state, first = step(state, rows[0])
        (state, totals), _ = jax.lax.scan(body, (state, first), rows[1:])
        return state, totals
    if backend == "tensorflow":
        import tensorflow as tf

        state, totals = step(state, rows[0])
        for i in tf.range(1, tf.shape(rows)[0]):
            state, metrics = step(state, rows[i])
            totals += metrics
        return state, totals
    state, totals = step(state, rows[0])
    for i in range(1, rows.shape[0]):
        state, metrics = step(state, rows[i])
        totals = totals + metrics
    return state, totals


def to_numpy(value: Any) -> np.ndarray:
    """A backend tensor as a NumPy array (copied off the device)."""
    return np.asarray(keras.ops.convert_to_numpy(value))


def to_tensors(values: Sequence[np.ndarray]) -> list:
    """NumPy arrays as backend tensors on the backend's default device."""
    return [keras.ops.convert_to_tensor(value) for value in values]
