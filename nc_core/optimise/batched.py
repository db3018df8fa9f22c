"""Several classes' triggers in one compiled step, on any Keras 3 backend: the accelerator path.

One class at a time, a step pushes one mini-batch (32 images) through the classifier, far too
little work to fill a GPU. Here ``slots`` classes are optimised together: every slot has its own
mask, pattern and Adam moments, the mini-batch is stamped with every slot's trigger and the
``slots x batch`` images go through the classifier in one call. Each slot's loss depends only on
its own trigger, and Adam is elementwise, so every slot follows exactly the update it would get
alone; a slot that finishes takes the next class at once. On 2 CPU cores this gains nothing (the
step is compute-bound already, BENCHMARKS.md); it is for accelerators.

The step is one pure function of the engine's state, written in ``keras.ops``; only taking its
gradient and compiling it differ by backend (:mod:`nc_core.backend`), so the same code
runs as a ``tf.function`` on TensorFlow, one ``jax.jit`` program on JAX and eagerly on PyTorch.
With one slot, behind :class:`OneClassEngine`, it is the one-class engine of the backends other
than TensorFlow (whose own is :class:`~nc_core.optimise.engine.KerasEngine`).

Each class still follows its own schedule through :class:`nc_core.optimise.schedule.TargetRun`. The
one difference from one class at a time: the slots share one mini-batch order, so L1s agree within
the noise of a different sample order, not bit for bit.

    >>> from nc_core.optimise.config import CleanseConfig
    >>> engine = BatchedEngine(classifier, x_unit, PixelRange.parse("0-255"), slots=4)
    >>> found = {}
    >>> run_batched(engine, [Reversal(t, CleanseConfig(epochs=3)) for t in range(6)], num_samples=len(x_unit),
    ...             on_done=lambda reversal, result, checkpoint: found.update({reversal.target: result}))
    >>> sorted(found), {result.epochs for result in found.values()}
    ([0, 1, 2, 3, 4, 5], {3})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from nc_core import backend
from nc_core.errors import InvalidParameterError
from nc_core.loading.pixels import PixelRange
from nc_core.optimise.adam import adam_update
from nc_core.optimise.epoch import PROB_FLOOR, EpochMetrics, epoch_batches
from nc_core.optimise.progress import CancelToken, EventCallback
from nc_core.optimise.results import TriggerResult
from nc_core.optimise.schedule import Checkpoint, Reversal, TargetRun, check_cancel, epoch_metrics, event_emitter
from nc_core.optimise.steps import STEPS_PER_CALL

TANH_EPSILON = 1e-7  # as :class:`nc_core.optimise.trigger.Trigger`'s default


class SlotState(NamedTuple):
    """Every slot's trigger (in tanh space) and Adam state; one row per slot."""

    mask_raw: object  # (K, H, W, 1)
    pattern_raw: object  # (K, H, W, C)
    mask_m: object
    mask_v: object
    pattern_m: object
    pattern_v: object
    iterations: object  # (K,), steps each slot has taken


class BatchedEngine:
    """Optimise the ``neural-cleanse`` triggers of up to ``slots`` classes in one step.

    Args:
        classifier: a Keras model whose outputs are class probabilities.
        x_unit: clean images in [0, 1], ``(N, H, W, C)``.
        pixel_range: the range the classifier expects its inputs in.
        slots: classes optimised together.
        batch_size, learning_rate, beta_1, beta_2: Adam and mini-batch settings, per class.
    """

    name = "batched"

    def __init__(
        self,
        classifier: keras.Model,
        x_unit: np.ndarray,
        pixel_range: PixelRange,
        slots: int = 8,
        batch_size: int = 32,
        learning_rate: float = 0.1,
        beta_1: float = 0.5,
        beta_2: float = 0.9,
    ):
        if slots < 1:
            raise InvalidParameterError(f"Classes per step must be at least 1, not {slots}.")
        classifier.trainable = False
        self.classifier, self.slots, self.batch_size = classifier, int(slots), int(batch_size)
        self.lr, self.beta_1, self.beta_2 = float(learning_rate), float(beta_1), float(beta_2)
        self.scale = ops.convert_to_tensor(np.asarray(pixel_range.scale, np.float32))  # one number, or one per channel
        self.offset = ops.convert_to_tensor(np.asarray(pixel_range.offset, np.float32))
        self.num_classes = int(classifier.outputs[0].shape[-1])
        self._x = ops.convert_to_tensor(np.asarray(x_unit, np.float32))
        self._num_samples = len(x_unit)
        self._weights = backend.model_weights(classifier)
        height, width, channels = x_unit.shape[1:]
        self.mask_shape, self.pattern_shape = (height, width, 1), (height, width, channels)
        rows = lambda shape: np.zeros((self.slots, *shape), np.float32)  # noqa: E731
        self._host: SlotState | None = SlotState(
            rows(self.mask_shape),
            rows(self.pattern_shape),
            rows(self.mask_shape),
            rows(self.mask_shape),
            rows(self.pattern_shape),
            rows(self.pattern_shape),
            np.zeros(self.slots, np.float32),
        )
        self._device: SlotState | None = None
        self.targets = np.zeros(self.slots, np.int32)
        self.active = np.zeros(self.slots, np.float32)
        self._rng = np.random.default_rng(0)
        self._grad = backend.value_and_grad(self._loss)
        self._run_chunk = backend.compile_function(self._chunk)

    # -- slots ---------------------------------------------------------------------------------
    def start_slot(self, slot: int, target: int, seed: int) -> None:
        """A fresh random start for ``target`` in ``slot`` (the same start as the one-class engine)."""
        rng = np.random.default_rng(seed)
        host = self._on_host()
        host.mask_raw[slot] = _to_tanh_space(rng.random(self.mask_shape))
        host.pattern_raw[slot] = _to_tanh_space(rng.random(self.pattern_shape))
        for moment in (host.mask_m, host.mask_v, host.pattern_m, host.pattern_v):
            moment[slot] = 0.0
        host.iterations[slot] = 0.0
        self.targets[slot], self.active[slot] = int(target), 1.0

    def reseed(self, seed: int) -> None:
        """Draw the next mini-batches from ``seed``: a one-class run's own order."""
        self._rng = np.random.default_rng(seed)

    @property
    def sampler_state(self) -> dict:
        """Where the mini-batch order stands, to continue it later."""
        return self._rng.bit_generator.state

    @sampler_state.setter
    def sampler_state(self, state: dict) -> None:
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state

    def stop_slot(self, slot: int) -> None:
        self.active[slot] = 0.0

    def snapshot_slot(self, slot: int) -> dict:
        host = self._on_host()
        return {
            "target": int(self.targets[slot]),
            "iterations": float(host.iterations[slot]),
            "weights": [np.array(v[slot]) for v in host[:6]],
        }

    def restore_slot(self, slot: int, state: dict) -> None:
        host = self._on_host()
        for rows, value in zip(host[:6], state["weights"]):
            rows[slot] = value
        host.iterations[slot] = state["iterations"]
        self.targets[slot], self.active[slot] = int(state["target"]), 1.0

    def trigger(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """The mask ``(H, W)`` and pattern ``(H, W, C)`` of ``slot`` now."""
        host = self._on_host()
        mask = _from_tanh_space_np(host.mask_raw[slot])[..., 0]
        return mask.astype(np.float32), _from_tanh_space_np(host.pattern_raw[slot]).astype(np.float32)

    def _on_host(self) -> SlotState:
        """The state as NumPy rows a slot can be edited in (copied back from the device if newer)."""
        if self._host is None:
            self._host = SlotState(*(backend.to_numpy(v).copy() for v in self._device))
            self._device = None
        return self._host

    def _on_device(self) -> SlotState:
        if self._device is None:
            self._device = SlotState(*backend.to_tensors(self._host))
            self._host = None
        return self._device

    # -- the step ------------------------------------------------------------------------------
    def _loss(self, params, x, targets, active, lams, weights):
        """Every slot's loss (summed over active slots, for the gradient) and its metrics."""
        mask = _from_tanh_space(params[0])[:, None]  # (K, 1, H, W, 1)
        pattern = _from_tanh_space(params[1])[:, None]  # (K, 1, H, W, C)
        stamped = x[None] * (1 - mask) + mask * pattern  # (K, B, H, W, C)
        flat = ops.reshape(stamped, (-1, *self.pattern_shape)) * self.scale + self.offset
        probs = ops.cast(backend.classify(self.classifier, weights, flat), "float32")
        probs = ops.reshape(probs, (self.slots, -1, self.num_classes))  # (K, B, classes)
        onehot = ops.one_hot(targets, self.num_classes)[:, None, :]
        target_prob = ops.sum(probs * onehot, axis=2)  # (K, B)
        ce = -ops.mean(ops.log(ops.maximum(target_prob, PROB_FLOOR)), axis=1)
        l1 = ops.sum(mask, axis=(1, 2, 3, 4))
        loss = ce + lams * l1
        hits = ops.cast(ops.equal(ops.argmax(probs, axis=2), ops.cast(targets[:, None], "int32")), "float32")
        metrics = ops.stack([loss, ce, l1, ops.mean(hits, axis=1)], axis=1)  # (K, 4)
        return ops.sum(loss * active), metrics

    def _step(self, state: SlotState, batch, targets, active, lams, weights):
        x = ops.take(self._x, batch, axis=0)
        (_, metrics), grads = self._grad([state.mask_raw, state.pattern_raw], x, targets, active, lams, weights)
        return _adam(state, grads, active, self.lr, self.beta_1, self.beta_2), metrics

    def _chunk(self, state: SlotState, batches, targets, active, lams, weights):
        def step(current, batch):
            return self._step(current, batch, targets, active, lams, weights)

        return backend.scan_steps(step, state, batches)

    def run_epoch(
        self, lams: Sequence[float], steps: int, on_step: Callable[[int], None] | None = None
    ) -> list[EpochMetrics]:
        """One epoch of every slot at its own penalty; each slot's means (inactive ones too).

        ``on_step(step)`` follows every compiled chunk of steps with the steps done (1-based).
        """
        batches = epoch_batches(self._rng, self._num_samples, steps, self.batch_size)
        targets, active, lams = backend.to_tensors([self.targets, self.active, np.asarray(lams, np.float32)])
        state, totals = self._on_device(), None
        for start in range(0, steps, STEPS_PER_CALL):
            chunk = ops.convert_to_tensor(batches[start : start + STEPS_PER_CALL])
            state, sums = self._run_chunk(state, chunk, targets, active, lams, self._weights)
            totals = sums if totals is None else totals + sums
            if on_step is not None:
                on_step(min(start + STEPS_PER_CALL, steps))
        self._device = SlotState(*state)
        means = (backend.to_numpy(totals) / steps).tolist()
        return [EpochMetrics(loss=m[0], ce=m[1], l1=m[2], asr=m[3]) for m in means]


def _adam(state: SlotState, grads, active, lr: float, beta_1: float, beta_2: float) -> SlotState:
    """Adam with an iteration count per slot: only active slots move."""
    iterations = state.iterations + active
    per_slot = lambda values: ops.reshape(values, (-1, 1, 1, 1))  # noqa: E731
    mask = adam_update(
        state.mask_raw, grads[0], state.mask_m, state.mask_v, per_slot(iterations), lr, beta_1, beta_2, per_slot(active)
    )
    pattern = adam_update(
        state.pattern_raw,
        grads[1],
        state.pattern_m,
        state.pattern_v,
        per_slot(iterations),
        lr,
        beta_1,
        beta_2,
        per_slot(active),
    )
    return SlotState(mask[0], pattern[0], mask[1], mask[2], pattern[1], pattern[2], iterations)


def _to_tanh_space(values: np.ndarray) -> np.ndarray:
    return np.arctanh((values - 0.5) * (2 - TANH_EPSILON)).astype(np.float32)


def _from_tanh_space(raw):
    return ops.tanh(raw) / (2 - TANH_EPSILON) + 0.5


def _from_tanh_space_np(raw: np.ndarray) -> np.ndarray:
    return np.tanh(raw) / (2 - TANH_EPSILON) + 0.5


class OneClassEngine:
    """A one-slot :class:`BatchedEngine` as a one-class engine (:class:`~nc_core.optimise.schedule.Engine`).

    It draws its mini-batches from the class's own seed, as the TensorFlow
    :class:`~nc_core.optimise.engine.KerasEngine` does, so both follow the same steps.

        >>> engine = OneClassEngine(classifier, x_unit, PixelRange.parse("0-1"))
        >>> engine.start_target(7, seed=7); engine.run_epoch(lam=0.0, steps=2).asr  # doctest: +SKIP
    """

    name = "keras"

    def __init__(self, classifier: keras.Model, x_unit: np.ndarray, pixel_range: PixelRange, **settings):
        self.slots = BatchedEngine(classifier, x_unit, pixel_range, slots=1, **settings)

    def warm_up(self) -> None:
        """Nothing to do: the step compiles on its first epoch."""

    def start_target(self, target: int, seed: int = 0) -> None:
        self.slots.start_slot(0, target, seed)
        self.slots.reseed(seed)

    def run_epoch(self, lam: float, steps: int, on_step: Callable[[int], None] | None = None) -> EpochMetrics:
        return self.slots.run_epoch([lam], steps, on_step)[0]

    def current_trigger(self) -> tuple[np.ndarray, np.ndarray]:
        return self.slots.trigger(0)

    def snapshot(self) -> dict:
        return {**self.slots.snapshot_slot(0), "rng": self.slots.sampler_state}

    def restore(self, state: dict) -> None:
        self.slots.restore_slot(0, state)
        self.slots.sampler_state = state["rng"]


def run_batched(
    engine: BatchedEngine,
    reversals: Sequence[Reversal],
    num_samples: int,
    on_done: Callable[[Reversal, TriggerResult, Checkpoint | None], None],
    event_callback: Callable[[Reversal], EventCallback | None] = lambda reversal: None,
    cancel: CancelToken | None = None,
    evaluate_asr: Callable[[int, np.ndarray, np.ndarray], float] | None = None,
) -> None:
    """Run ``reversals`` through the engine's slots, each to the end of its own schedule.

    ``on_done(reversal, result, checkpoint)`` receives each class as it finishes (the checkpoint when
    the reversal asked for one and its budget, not its early stop, ended it). ``event_callback(reversal)``
    gives the progress callback of a reversal as it starts. Raises ``RunCancelled`` on cancel.
    """
    pending = list(reversals)
    if any(reversal.config.method != "neural-cleanse" for reversal in pending):
        raise InvalidParameterError("Classes per step above 1 needs the neural-cleanse method.")
    running: dict[int, tuple[Reversal, TargetRun, Callable]] = {}
    steps = pending[0].config.steps_for(num_samples) if pending else 0

    def fill(slot: int) -> None:
        reversal = pending.pop(0)
        run = TargetRun(reversal.target, reversal.config, steps, reversal.resume)
        if reversal.resume is not None:
            engine.restore_slot(slot, reversal.resume.engine_state)
        else:
            engine.start_slot(slot, reversal.target, reversal.config.seed + reversal.target)
        emit = event_emitter(event_callback(reversal), run)
        emit("class_start", run.epoch, 0)
        running[slot] = (reversal, run, emit)

    def finish(slot: int) -> None:
        reversal, run, emit = running.pop(slot)
        trigger = lambda: engine.trigger(slot)  # noqa: E731
        checkpoint = (
            run.checkpoint(engine.snapshot_slot(slot)) if reversal.keep_checkpoint and not run.stopped_early else None
        )
        asr = (lambda m, p: evaluate_asr(reversal.target, m, p)) if evaluate_asr is not None else None
        result = run.result(engine.name, trigger, asr)
        engine.stop_slot(slot)
        emit("class_done", run.epoch, steps, {"l1": result.l1, "asr": result.asr})
        on_done(reversal, result, checkpoint)

    for slot in range(engine.slots):
        if pending:
            fill(slot)
    while running:
        lams = [running[k][1].lam if k in running else 0.0 for k in range(engine.slots)]

        def on_step(step: int) -> None:
            for _, run, emit in running.values():
                emit("step", run.epoch + 1, step)
            check_cancel(cancel)

        metrics = engine.run_epoch(lams, steps, on_step)
        for slot in sorted(running):
            _, run, emit = running[slot]
            run.record(metrics[slot], lambda: engine.trigger(slot))  # noqa: B023 (called within this iteration)
            emit("epoch", run.epoch, steps, epoch_metrics(run), lambda slot=slot: engine.trigger(slot))
            if run.finished:
                finish(slot)
                if pending:
                    fill(slot)
