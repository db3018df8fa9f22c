"""The legacy engine's child process: the tutorial's loop, line for line, in ``tf_keras``.

Run as ``python -m nc_core.optimise.legacy_worker FOLDER``; it reads the model specs, weights, images and
settings that :class:`nc_core.optimise.legacy.LegacyEngine` wrote into FOLDER, then answers one JSON
command per line on stdin (``start``, ``epoch``, ``trigger``, ``quit``) on stdout.

Graph mode must be switched on before anything else touches TensorFlow, hence the order below.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import tensorflow as tf

tf.compat.v1.disable_eager_execution()

import numpy as np  # noqa: E402
import tf_keras  # noqa: E402
from tf_keras import backend as K  # noqa: E402

from nc_core.optimise.epoch import PROB_FLOOR, epoch_batches  # noqa: E402


class LegacyTrigger(tf_keras.layers.Layer):
    """The tf_keras twin of :class:`nc_core.optimise.trigger.Trigger`: ``x * (1 - m) + m * p``."""

    def __init__(self, method: str, epsilon: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        self.method, self.epsilon = method, epsilon

    def build(self, input_shape):
        height, width, channels = (int(d) for d in input_shape[1:])
        mask_channels = channels if self.method == "plain" else 1
        self.mask_weight = self.add_weight("mask", (height, width, mask_channels), initializer="zeros")
        self.pattern_weight = self.add_weight("pattern", (height, width, channels), initializer="zeros")

    def _from_tanh(self, raw):
        return K.tanh(raw) / (2 - self.epsilon) + 0.5

    def mask(self):
        return self.mask_weight if self.method == "plain" else self._from_tanh(self.mask_weight)

    def pattern(self):
        return self.pattern_weight if self.method == "plain" else self._from_tanh(self.pattern_weight)

    def call(self, inputs):
        mask = self.mask()
        return inputs * (1 - mask) + mask * self.pattern()

    def initial_values(self, seed: int) -> list[np.ndarray]:
        """The same start as the Keras 3 layer for the same seed."""
        shapes = [K.int_shape(self.mask_weight), K.int_shape(self.pattern_weight)]
        if self.method == "plain":
            return [np.zeros(shape, np.float32) for shape in shapes]
        rng = np.random.default_rng(seed)
        return [np.arctanh((rng.random(shape) - 0.5) * (2 - self.epsilon)).astype(np.float32) for shape in shapes]


def rebuild_layer(spec: dict) -> tf_keras.layers.Layer:
    """A tf_keras layer from a Keras 3 layer spec, keeping only the keys its ``__init__`` takes."""
    layer_class = getattr(tf_keras.layers, spec["class_name"], None)
    if layer_class is None:
        raise ValueError(f"layer {spec['class_name']} has no tf_keras counterpart")
    accepted = set(inspect.signature(layer_class.__init__).parameters) | {"name", "dtype", "trainable"}
    return layer_class(**{k: v for k, v in spec["config"].items() if k in accepted})


class TutorialLoop:
    """The tutorial's training function, built once with ``get_updates`` and ``K.function``."""

    def __init__(self, folder: Path):
        settings = json.loads((folder / "settings.json").read_text())
        self.x = np.load(folder / "x.npy")
        self.batch_size = settings["batch_size"]
        self.folder = folder
        self.trigger = LegacyTrigger(settings["method"], name="trigger")
        to_model_range = tf_keras.layers.Rescaling(
            np.float32(settings["scale"]), np.float32(settings["offset"]), name="to_model_range"
        )
        layers = [rebuild_layer(spec) for spec in json.loads((folder / "layers.json").read_text())]
        model = tf_keras.Sequential([tf_keras.Input(self.x.shape[1:]), self.trigger, to_model_range, *layers])
        with np.load(folder / "weights.npz") as weights:
            for i, layer in enumerate(layers):
                layer.set_weights([weights[f"{i}_{j}"] for j in range(len(layer.weights))])
                layer.trainable = False

        # The tutorial: a placeholder for the target, the loss, get_updates, K.function.
        y_target = K.placeholder(shape=(None,), dtype="int32")
        self.lam = K.variable(0.0)
        target_prob = tf.gather(model.output, y_target[0], axis=1)
        ce = -K.mean(K.log(K.maximum(target_prob, PROB_FLOOR)))
        mask = self.trigger.mask()
        l1 = K.sum(K.abs(mask)) / int(mask.shape[-1])
        loss = ce + self.lam * l1
        acc = K.mean(K.cast(K.equal(K.argmax(model.output, axis=1), K.cast(y_target[0], "int64")), "float32"))
        self.optimizer = tf_keras.optimizers.legacy.Adam(
            learning_rate=settings["learning_rate"], beta_1=settings["beta_1"], beta_2=settings["beta_2"]
        )
        params = self.trigger.trainable_weights
        updates = self.optimizer.get_updates(params=params, loss=loss)
        self.train = K.function([model.input, y_target], [loss, ce, l1, acc], updates=updates)
        self._slots = [self.optimizer.iterations] + [
            self.optimizer.get_slot(p, name) for p in params for name in ("m", "v")
        ]
        self.rng = np.random.default_rng(0)
        self.target = 0

    def start(self, target: int, seed: int) -> dict:
        self.target = target
        self.rng = np.random.default_rng(seed)
        K.batch_set_value(list(zip(self.trigger.weights, self.trigger.initial_values(seed))))
        K.batch_set_value([(v, np.zeros(K.int_shape(v), v.dtype.as_numpy_dtype)) for v in self._slots])
        return {"ok": True}

    def epoch(self, lam: float, steps: int):
        K.set_value(self.lam, lam)
        y_target = np.full(self.batch_size, self.target, np.int32)
        totals = np.zeros(4)
        for step, batch in enumerate(epoch_batches(self.rng, len(self.x), steps, self.batch_size), start=1):
            totals += np.asarray(self.train([self.x[batch], y_target]), np.float64)
            yield {"step": step}
        loss, ce, l1, asr = (totals / steps).tolist()
        yield {"metrics": {"loss": loss, "ce": ce, "l1": l1, "asr": asr}}

    def current_trigger(self) -> dict:
        mask, pattern = K.batch_get_value([self.trigger.mask(), self.trigger.pattern()])
        if mask.shape[-1] == 1:
            mask = mask[..., 0]
        path = self.folder / "trigger.npz"
        np.savez(path, mask=mask.astype(np.float32), pattern=pattern.astype(np.float32))
        return {"path": str(path)}


def serve(folder: Path) -> None:
    """Answer commands until ``quit`` or end of input.

    Only replies go to stdout: anything a library prints is sent to stderr, the log.
    """
    protocol, sys.stdout = sys.stdout, sys.stderr

    def reply(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        loop = TutorialLoop(folder)
    except Exception as error:  # the parent shows this as one line
        for _line in sys.stdin:
            reply({"error": f"cannot rebuild the model in tf_keras ({error})"})
        return
    for line in sys.stdin:
        command = json.loads(line)
        name = command["cmd"]
        if name == "quit":
            return
        if name == "ping":
            reply({"ok": True})
        elif name == "start":
            reply(loop.start(command["target"], command["seed"]))
        elif name == "epoch":
            for message in loop.epoch(command["lam"], command["steps"]):
                reply(message)
        elif name == "trigger":
            reply(loop.current_trigger())


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
