"""Adam as a pure function, so a compiled step can carry its moments as plain tensors.

Keras' ``Adam`` optimiser keeps its moments in variables it owns, which a JAX ``jit`` cannot
update in place and which hold one iteration count for all weights. The engines here need Adam
inside a pure step, and several independent problems in one tensor (one trigger per class, one
image per start), each at its own iteration. This is Keras 3's update, term for term.

    >>> import numpy as np
    >>> ones, zeros = np.ones(2, np.float32), np.zeros(2, np.float32)
    >>> param, m, v = adam_update(ones, ones, zeros, zeros, iteration=1.0, learning_rate=0.1)
    >>> [round(float(p), 3) for p in ops.convert_to_numpy(param)]  # the first step moves by the learning rate
    [0.9, 0.9]
"""

from __future__ import annotations

from typing import Any

from keras import ops

#: Keras' Adam default.
EPSILON = 1e-7


def adam_update(
    param: Any,
    grad: Any,
    m: Any,
    v: Any,
    iteration: Any,
    learning_rate: float,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    moving: Any = 1.0,
) -> tuple[Any, Any, Any]:
    """One Adam step: the new ``(param, m, v)``.

    ``iteration`` is the step number after this update (1 for the first), a number or one per
    row broadcast against ``param``; rows whose ``moving`` is 0 keep their values and moments.
    """
    step = ops.maximum(iteration, 1.0)
    alpha = learning_rate * ops.sqrt(1 - ops.power(beta_2, step)) / (1 - ops.power(beta_1, step))
    m = m + moving * (grad - m) * (1 - beta_1)
    v = v + moving * (ops.square(grad) - v) * (1 - beta_2)
    return param - moving * alpha * m / (ops.sqrt(v) + EPSILON), m, v
