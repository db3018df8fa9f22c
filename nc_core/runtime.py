"""Thread settings for the processes nc_core owns (the CLI, background workers, benchmarks).

A scan optimises several classes side by side on threads (:mod:`nc_core.optimise.threads`), and two
graphs run at once only when TensorFlow has an inter-op thread for each: so the inter-op pool
keeps TensorFlow's default (one thread per core) unless ``$NC_TF_INTER_OP_THREADS`` sets it.
(With one class at a time, one inter-op thread once measured a few percent faster per step; on
the noisy 2-core benchmark machine that difference is within the noise, the threads' gain is
not.) On PyTorch only the cap on each op's threads applies; JAX takes its threads from XLA's own
flags. The library itself never calls this: a program that imports nc_core keeps its own settings.

    >>> configure_backend()
"""

from __future__ import annotations

import os

INTER_OP_THREADS_ENV = "NC_TF_INTER_OP_THREADS"


def configure_backend(intra_op_threads: int | None = None) -> None:
    """Use ``$NC_TF_INTER_OP_THREADS`` inter-op threads if set, if TensorFlow is not yet running;
    ``intra_op_threads`` caps each op's threads (an audit runs one scan per core)."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        if intra_op_threads:
            torch.set_num_threads(int(intra_op_threads))
        return
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        inter_op = int(os.environ.get(INTER_OP_THREADS_ENV, "0") or 0)
        if inter_op > 0:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        if intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(int(intra_op_threads))
    except RuntimeError:  # TensorFlow already initialised its runtime: keep what it has
        pass
