"""The ``legacy`` engine: the tutorial's literal loop, ``get_updates`` and ``K.function``.

Keras 3 removed ``optimizer.get_updates`` and ``K.function(..., updates=...)``; ``tf_keras``
2.21 still has them, but only in graph mode, which TensorFlow switches on for the whole
process. So this engine runs its loop in a child process (:mod:`nc_core.optimise.legacy_worker`) and
talks to it one epoch at a time over pipes.

The untrusted model file is never opened with ``tf_keras``: the model is loaded here with Keras 3
``safe_mode=True``, and only its layer configs and weights cross to the child, which rebuilds the
same stack of built-in layers.

The same epoch as the keras engine's example (:mod:`nc_core.optimise.engine`), the same figures:

    >>> engine = LegacyEngine(classifier, x_unit, PixelRange.parse("0-255"))
    >>> engine.start_target(7); engine.run_epoch(lam=0.0, steps=10)
    EpochMetrics(loss=0.01..., ce=0.01..., l1=415.7..., asr=0.99...)
    >>> engine.close()
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from nc_core.errors import InvalidParameterError, NCError
from nc_core.loading.pixels import PixelRange
from nc_core.optimise.epoch import EpochMetrics

_DROPPED_KEYS = ("_initializer", "_regularizer", "_constraint")


def flatten_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers in order, nested models unrolled, if they form one chain.

    The legacy engine rebuilds models as a ``tf_keras.Sequential``; branching graphs (residual
    blocks, several inputs) cannot be, and are refused with a clear message.
    """
    layers: list[keras.layers.Layer] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            layers.extend(flatten_layers(layer))
        else:
            layers.append(layer)
    if not isinstance(model, keras.Sequential) and not _is_chain(model):
        raise InvalidParameterError(
            "The legacy engine rebuilds plain layer stacks only; this model branches. Use the keras engine."
        )
    return layers


def _is_chain(model: keras.Model) -> bool:
    inner = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return all(later.input is earlier.output for earlier, later in zip(inner, inner[1:]))


def layer_spec(layer: keras.layers.Layer) -> dict:
    """A layer's class name and the config keys ``tf_keras`` understands (weights go separately)."""
    config = {key: value for key, value in layer.get_config().items() if not key.endswith(_DROPPED_KEYS)}
    if isinstance(config.get("dtype"), dict):
        config["dtype"] = config["dtype"].get("config", {}).get("name", "float32")
    return {"class_name": type(layer).__name__, "config": config}


def export_model(classifier: keras.Model, folder: Path) -> None:
    """Write the layer specs and weights the child process rebuilds the model from."""
    layers = flatten_layers(classifier)
    specs = [layer_spec(layer) for layer in layers]
    weights = {f"{i}_{j}": np.asarray(w) for i, layer in enumerate(layers) for j, w in enumerate(layer.get_weights())}
    (folder / "layers.json").write_text(json.dumps(specs))
    np.savez(folder / "weights.npz", **weights)


class LegacyEngine:
    """The :class:`~nc_core.optimise.schedule.Engine` protocol, run by a ``tf_keras`` graph-mode child.

    Same arguments as :class:`~nc_core.optimise.engine.KerasEngine`. The child starts once and serves
    every target; it is stopped by :meth:`close` (or at interpreter exit).
    """

    name = "legacy"

    def __init__(
        self,
        classifier: keras.Model,
        x_unit: np.ndarray,
        pixel_range: PixelRange,
        method: str = "neural-cleanse",
        batch_size: int = 32,
        learning_rate: float = 0.1,
        beta_1: float = 0.5,
        beta_2: float = 0.9,
    ):
        self._folder = tempfile.TemporaryDirectory(prefix="nc_legacy_")
        folder = Path(self._folder.name)
        export_model(classifier, folder)
        np.save(folder / "x.npy", np.asarray(x_unit, np.float32))
        settings = dict(
            method=method,
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            beta_1=float(beta_1),
            beta_2=float(beta_2),
            scale=list(pixel_range.scale),
            offset=list(pixel_range.offset),
        )
        (folder / "settings.json").write_text(json.dumps(settings))
        self._log = open(folder / "worker.log", "w+")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "nc_core.optimise.legacy_worker", str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        atexit.register(self.close)
        self._ask({"cmd": "ping"})

    def _send(self, message: dict) -> None:
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()

    def _receive(self) -> dict:
        line = self._process.stdout.readline()
        if not line:
            self._log.seek(0)
            detail = self._log.read().strip().splitlines()
            raise NCError("The legacy engine stopped unexpectedly: " + (detail[-1] if detail else "no output"))
        reply = json.loads(line)
        if "error" in reply:
            raise NCError(f"The legacy engine failed: {reply['error']}")
        return reply

    def _ask(self, message: dict) -> dict:
        self._send(message)
        return self._receive()

    def start_target(self, target: int, seed: int = 0) -> None:
        self._ask({"cmd": "start", "target": int(target), "seed": int(seed)})

    def run_epoch(self, lam: float, steps: int, on_step: Callable[[int], None] | None = None) -> EpochMetrics:
        self._send({"cmd": "epoch", "lam": float(lam), "steps": int(steps)})
        while True:
            reply = self._receive()
            if "metrics" in reply:
                return EpochMetrics(**reply["metrics"])
            if on_step is not None:
                try:
                    on_step(reply["step"])
                except BaseException:
                    self._drain_epoch()
                    raise

    def _drain_epoch(self) -> None:
        """Read the rest of an interrupted epoch so the pipe stays in step for the next call."""
        while "metrics" not in self._receive():
            pass

    def current_trigger(self) -> tuple[np.ndarray, np.ndarray]:
        reply = self._ask({"cmd": "trigger"})
        with np.load(reply["path"], allow_pickle=False) as arrays:
            return arrays["mask"], arrays["pattern"]

    def close(self) -> None:
        """Stop the child process and remove its files."""
        if self._process.poll() is None:
            try:
                self._send({"cmd": "quit"})
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
        for stream in (self._process.stdin, self._process.stdout, self._log):
            stream.close()
        self._folder.cleanup()

    def __del__(self):
        if hasattr(self, "_process"):
            self.close()
