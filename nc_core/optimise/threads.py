"""Several classes at once on a CPU: one engine per thread, every callback on the caller's thread.

A step of a small classifier is a chain of small ops, each too small to keep every core busy, and
between them the CPU waits on dispatch. Two classes optimised side by side on two threads (each
with its own engine, so its own trigger, optimiser and sample order) kept both cores of the
benchmark machine busy: 1.2-1.6x the steps per second of one class at a time on ``signs``, about
2x on MNIST (BENCHMARKS.md). TensorFlow releases the GIL while a graph runs, so threads suffice,
and they share the classifier, the images and the traced forward pass instead of copying them.

Only the optimisation runs on the worker threads. Progress events, results and checkpoints come
back through a queue and are delivered on the calling thread, so :class:`ScanProgress`, the
dashboard's store and the CLI's printer never see two threads. A cancel (the caller's token, or
an exception raised by a callback) stops every thread within one chunk of steps
(:mod:`nc_core.optimise.steps`); classes finished before it are delivered. Every class follows exactly the
trajectory it would follow alone: which thread runs it does not matter.

A scan passes one :class:`~nc_core.optimise.engine.KerasEngine` per thread and its classes'
reversals (:class:`nc_core.optimise.runner.ReversalRunner`); any engines and reversals do, as long
as ``run_one`` knows them:

    >>> def run_one(engine, reversal, on_event, cancel):
    ...     return f"class {reversal} on {engine}", None  # (result, checkpoint)
    >>> done = []
    >>> run_on_threads(["engine A", "engine B"], [0, 1, 2], run_one, events=lambda reversal: print,
    ...                on_done=lambda reversal, result, checkpoint: done.append(result))
    >>> sorted(done)  # each class ran on whichever engine was free
    ['class 0 on engine ...', 'class 1 on engine ...', 'class 2 on engine ...']
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from nc_core.errors import RunCancelled
from nc_core.optimise.progress import CancelToken, EventCallback, ProgressEvent

#: Threads used when the config leaves it to the machine: one per core, at most this many (more
#: was never measured, and each thread traces its own step once, about a second).
MAX_AUTO_THREADS = 4

RunOne = Callable[[Any, Any, EventCallback, CancelToken], tuple[Any, Any]]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells, else the core count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def auto_threads(requested: int) -> int:
    """``requested`` threads, or for 0 one per usable core up to ``MAX_AUTO_THREADS``."""
    return requested if requested > 0 else min(usable_cores(), MAX_AUTO_THREADS)


class _Halt:
    """The cancel token the worker threads check: the caller's, or a stop after an error."""

    def __init__(self, caller: CancelToken | None):
        self.caller, self.stopped = caller, False

    @property
    def cancelled(self) -> bool:
        return self.stopped or (self.caller is not None and self.caller.cancelled)


def _frozen_trigger(event: ProgressEvent) -> ProgressEvent:
    """The event with its trigger read now, on the worker thread: by the time the caller looks,
    the engine may have moved on (or on to another class)."""
    if event.trigger is None:
        return event
    trigger = event.trigger()
    return replace(event, trigger=lambda: trigger)


def run_on_threads(
    engines: Sequence[Any],
    reversals: Sequence[Any],
    run_one: RunOne,
    events: Callable[[Any], EventCallback],
    on_done: Callable[[Any, Any, Any], None],
    cancel: CancelToken | None = None,
) -> None:
    """Run ``reversals`` on ``len(engines)`` threads, in order of ``reversals`` as engines come free.

    ``run_one(engine, reversal, on_event, cancel)`` returns ``(result, checkpoint)``; ``events(reversal)``
    gives a reversal's event callback when it starts; ``on_done(reversal, result, checkpoint)`` receives
    each finished class. All three callbacks run on the calling thread. The first exception (a
    :class:`~nc_core.errors.RunCancelled` on a cancel) is raised once every thread has stopped.
    """
    inbox: queue.Queue = queue.Queue()
    halt = _Halt(cancel)
    pending, idle = list(reversals)[::-1], list(engines)
    started: list[tuple[Any, EventCallback]] = []
    running, failure = 0, None

    def work(engine: Any, reversal: Any, key: int) -> None:
        try:
            result, checkpoint = run_one(
                engine, reversal, lambda e: inbox.put(("event", key, _frozen_trigger(e))), halt
            )
            inbox.put(("done", key, (engine, result, checkpoint)))
        except BaseException as error:  # handed to the calling thread, which raises it
            inbox.put(("error", key, (engine, error)))

    while pending or running:
        while pending and idle and failure is None and not halt.cancelled:
            reversal = pending.pop()
            try:
                started.append((reversal, events(reversal)))
            except BaseException as error:  # stop the threads already running before raising it
                failure, halt.stopped = error, True
                break
            threading.Thread(
                target=work,
                args=(idle.pop(), reversal, len(started) - 1),
                daemon=True,
                name=f"nc-class-{getattr(reversal, 'target', '')}",
            ).start()
            running += 1
        if not running:
            break
        kind, key, payload = inbox.get()
        reversal, report = started[key]
        try:
            if kind == "event":
                if failure is None and not halt.cancelled:  # nothing is reported after a cancel
                    report(payload)
                continue
            running -= 1
            idle.append(payload[0])
            if kind == "error":
                raise payload[1]
            if failure is None:
                on_done(reversal, payload[1], payload[2])
        except BaseException as error:
            failure = failure or error
            halt.stopped = True
    if failure is not None:
        raise failure
    if halt.cancelled and pending:
        raise RunCancelled("The run was cancelled.")
