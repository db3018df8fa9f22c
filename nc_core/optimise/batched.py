"""Several classes' triggers in one batched step: the accelerator path.

One class at a time, a step pushes one mini-batch (32 images) through the classifier, far too
little work to fill a GPU. Here ``slots`` classes are optimised together: every slot has its own
mask, pattern and Adam moments, the mini-batch is stamped with every slot's trigger and the
``slots x batch`` images go through the classifier in one call. Each slot's loss depends only on
its own trigger, and Adam is elementwise, so every slot follows exactly the update it would get
alone; a slot that finishes takes the next class at once. On 2 CPU cores this gains nothing (the
step is compute-bound already, BENCHMARKS.md); it is for accelerators.

Each class still follows its own schedule through :class:`nc_core.optimise.cleanse.TargetRun`. The one
difference from one class at a time: the slots share one mini-batch order, so L1s agree within
the noise of a different sample order, not bit for bit.

    >>> engine = BatchedEngine(classifier, x_unit, PixelRange.parse("0-255"), slots=4)
    >>> found = {}
    >>> run_batched(engine, [Job(t, CleanseConfig(epochs=3)) for t in range(6)], num_samples=len(x_unit),
    ...             on_done=lambda job, result, checkpoint: found.update({job.target: result}))
    >>> sorted(found), {result.epochs for result in found.values()}
    ([0, 1, 2, 3, 4, 5], {3})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from nc_core.errors import InvalidParameterError
from nc_core.loading.pixels import PixelRange
from nc_core.optimise.cleanse import (
    Checkpoint,
    CleanseConfig,
    TargetRun,
    TriggerResult,
    check_cancel,
    epoch_metrics,
    event_emitter,
)
from nc_core.optimise.epoch import PROB_FLOOR, EpochMetrics, epoch_batches
from nc_core.optimise.progress import CancelToken, EventCallback
from nc_core.optimise.steps import compile_steps, run_in_chunks

TANH_EPSILON = 1e-7  # as :class:`nc_core.optimise.trigger.Trigger`'s default
ADAM_EPSILON = 1e-7  # as Keras' Adam


@dataclass(frozen=True)
class Job:
    """One class to optimise: its target, its config (epochs, seed) and where to resume from."""

    target: int
    config: CleanseConfig
    resume: Checkpoint | None = None
    keep_checkpoint: bool = False

    @property
    def epochs_left(self) -> int:
        return self.config.epochs - (len(self.resume.history) if self.resume else 0)


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
        self.scale, self.offset = np.float32(pixel_range.scale), np.float32(pixel_range.offset)
        self._x = tf.constant(np.asarray(x_unit, np.float32))
        self._num_samples = len(x_unit)
        height, width, channels = x_unit.shape[1:]
        self.mask_shape, self.pattern_shape = (height, width, 1), (height, width, channels)
        zeros = lambda shape: tf.Variable(tf.zeros((self.slots, *shape)), trainable=False)  # noqa: E731
        self.mask_raw, self.pattern_raw = zeros(self.mask_shape), zeros(self.pattern_shape)
        self.moments = [
            zeros(self.mask_shape),
            zeros(self.mask_shape),
            zeros(self.pattern_shape),
            zeros(self.pattern_shape),
        ]
        self.iterations = tf.Variable(tf.zeros(self.slots), trainable=False)
        self.targets = tf.Variable(tf.zeros(self.slots, tf.int32), trainable=False)
        self.active = tf.Variable(tf.zeros(self.slots), trainable=False)
        self._rng = np.random.default_rng(0)
        self._steps = compile_steps(self._train_step, metrics_shape=[self.slots, 4], lam_shape=[self.slots])

    # -- slots ---------------------------------------------------------------------------------
    def start_slot(self, slot: int, target: int, seed: int) -> None:
        """A fresh random start for ``target`` in ``slot`` (the same start as the one-class engine)."""
        rng = np.random.default_rng(seed)
        self.mask_raw[slot].assign(_to_tanh_space(rng.random(self.mask_shape)))
        self.pattern_raw[slot].assign(_to_tanh_space(rng.random(self.pattern_shape)))
        for moment in self.moments:
            moment[slot].assign(tf.zeros(moment.shape[1:]))
        self.iterations[slot].assign(0.0)
        self.targets[slot].assign(int(target))
        self.active[slot].assign(1.0)

    def stop_slot(self, slot: int) -> None:
        self.active[slot].assign(0.0)

    def snapshot_slot(self, slot: int) -> dict:
        return {
            "target": int(self.targets[slot].numpy()),
            "iterations": float(self.iterations[slot].numpy()),
            "weights": [v[slot].numpy() for v in (self.mask_raw, self.pattern_raw, *self.moments)],
        }

    def restore_slot(self, slot: int, state: dict) -> None:
        for variable, value in zip((self.mask_raw, self.pattern_raw, *self.moments), state["weights"]):
            variable[slot].assign(value)
        self.iterations[slot].assign(state["iterations"])
        self.targets[slot].assign(state["target"])
        self.active[slot].assign(1.0)

    def trigger(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """The mask ``(H, W)`` and pattern ``(H, W, C)`` of ``slot`` now."""
        mask = _from_tanh_space(self.mask_raw[slot]).numpy()[..., 0]
        return mask.astype(np.float32), _from_tanh_space(self.pattern_raw[slot]).numpy().astype(np.float32)

    # -- the step ------------------------------------------------------------------------------
    def _train_step(self, batch_indices, lams):
        x = tf.gather(self._x, batch_indices)  # (B, H, W, C)
        with tf.GradientTape() as tape:
            tape.watch([self.mask_raw, self.pattern_raw])
            mask = _from_tanh_space(self.mask_raw)[:, None]  # (K, 1, H, W, 1)
            pattern = _from_tanh_space(self.pattern_raw)[:, None]  # (K, 1, H, W, C)
            stamped = x[None] * (1 - mask) + mask * pattern  # (K, B, H, W, C)
            flat = tf.reshape(stamped, (-1, *x.shape[1:])) * self.scale + self.offset
            probs = tf.reshape(self.classifier(flat, training=False), (self.slots, tf.shape(x)[0], -1))
            target_prob = tf.gather(probs, self.targets, axis=2, batch_dims=1)  # (K, B)
            ce = -tf.reduce_mean(tf.math.log(tf.maximum(target_prob, PROB_FLOOR)), axis=1)
            l1 = tf.reduce_sum(mask, axis=[1, 2, 3, 4])
            loss = ce + lams * l1
            total = tf.reduce_sum(loss * self.active)
        grads = tape.gradient(total, [self.mask_raw, self.pattern_raw])
        self._adam(grads)
        hits = tf.equal(tf.argmax(probs, axis=2, output_type=tf.int32), self.targets[:, None])
        return tf.stack([loss, ce, l1, tf.reduce_mean(tf.cast(hits, tf.float32), axis=1)], axis=1)  # (K, 4)

    def _adam(self, grads) -> None:
        """Keras 3's Adam update, with an iteration count per slot (only active slots move)."""
        self.iterations.assign_add(self.active)
        step = tf.maximum(self.iterations, 1.0)
        alpha = self.lr * tf.sqrt(1 - self.beta_2**step) / (1 - self.beta_1**step)
        for variable, grad, m, v in (
            (self.mask_raw, grads[0], *self.moments[:2]),
            (self.pattern_raw, grads[1], *self.moments[2:]),
        ):
            moving = tf.reshape(self.active, (-1, 1, 1, 1))
            m.assign_add(moving * (grad - m) * (1 - self.beta_1))
            v.assign_add(moving * (tf.square(grad) - v) * (1 - self.beta_2))
            variable.assign_sub(moving * tf.reshape(alpha, (-1, 1, 1, 1)) * m / (tf.sqrt(v) + ADAM_EPSILON))

    def run_epoch(
        self, lams: Sequence[float], steps: int, on_step: Callable[[int], None] | None = None
    ) -> list[EpochMetrics]:
        """One epoch of every slot at its own penalty; each slot's means (inactive ones too)."""
        batches = epoch_batches(self._rng, self._num_samples, steps, self.batch_size)
        totals = run_in_chunks(self._steps, batches, tf.constant(np.asarray(lams, np.float32)), on_step)
        means = (totals / steps).tolist()
        return [EpochMetrics(loss=m[0], ce=m[1], l1=m[2], asr=m[3]) for m in means]


def _to_tanh_space(values: np.ndarray) -> np.ndarray:
    return np.arctanh((values - 0.5) * (2 - TANH_EPSILON)).astype(np.float32)


def _from_tanh_space(raw):
    return tf.tanh(raw) / (2 - TANH_EPSILON) + 0.5


def run_batched(
    engine: BatchedEngine,
    jobs: Sequence[Job],
    num_samples: int,
    on_done: Callable[[Job, TriggerResult, Checkpoint | None], None],
    event_callback: Callable[[Job], EventCallback | None] = lambda job: None,
    cancel: CancelToken | None = None,
    evaluate_asr: Callable[[int, np.ndarray, np.ndarray], float] | None = None,
) -> None:
    """Run ``jobs`` through the engine's slots, each to the end of its own schedule.

    ``on_done(job, result, checkpoint)`` receives each class as it finishes (the checkpoint when
    the job asked for one and its budget, not its early stop, ended it). ``event_callback(job)``
    gives the progress callback of a job as it starts. Raises ``RunCancelled`` on cancel.
    """
    pending = list(jobs)
    if any(job.config.method != "neural-cleanse" for job in pending):
        raise InvalidParameterError("Classes per step above 1 needs the neural-cleanse method.")
    running: dict[int, tuple[Job, TargetRun, Callable]] = {}
    steps = pending[0].config.steps_for(num_samples) if pending else 0

    def fill(slot: int) -> None:
        job = pending.pop(0)
        run = TargetRun(job.target, job.config, steps, job.resume)
        if job.resume is not None:
            engine.restore_slot(slot, job.resume.engine_state)
        else:
            engine.start_slot(slot, job.target, job.config.seed + job.target)
        emit = event_emitter(event_callback(job), run)
        emit("class_start", run.epoch, 0)
        running[slot] = (job, run, emit)

    def finish(slot: int) -> None:
        job, run, emit = running.pop(slot)
        trigger = lambda: engine.trigger(slot)  # noqa: E731
        checkpoint = (
            run.checkpoint(engine.snapshot_slot(slot)) if job.keep_checkpoint and not run.stopped_early else None
        )
        asr = (lambda m, p: evaluate_asr(job.target, m, p)) if evaluate_asr is not None else None
        result = run.result(engine.name, trigger, asr)
        engine.stop_slot(slot)
        emit("class_done", run.epoch, steps, {"l1": result.l1, "asr": result.asr})
        on_done(job, result, checkpoint)

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
