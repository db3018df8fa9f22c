"""TensorFlow settings for the processes nc_core owns (the CLI, background workers, benchmarks).

A Neural Cleanse step is one small, strictly sequential graph: running independent ops in
parallel (inter-op threads) only adds scheduling, while each op still uses every core
(intra-op threads). One inter-op thread measured 6-8 % faster per step on 2 cores
(6.5 against 7.0 ms, signs model, batch 32). The library itself never calls this: a program
that imports nc_core keeps its own settings.

    >>> configure_tensorflow()
"""
from __future__ import annotations

import os

INTER_OP_THREADS_ENV = "NC_TF_INTER_OP_THREADS"


def configure_tensorflow(intra_op_threads: int | None = None) -> None:
    """Use ``$NC_TF_INTER_OP_THREADS`` (default 1) inter-op threads, if TensorFlow is not yet running;
    ``intra_op_threads`` caps each op's threads (an audit runs one scan per core)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ.get(INTER_OP_THREADS_ENV, "1")))
        if intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(int(intra_op_threads))
    except RuntimeError:  # TensorFlow already initialised its runtime: keep what it has
        pass
