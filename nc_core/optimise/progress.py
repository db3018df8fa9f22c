"""Progress events and cancellation, shared by the engines, the scan, the CLI and the dashboard.

A run reports through one callback, ``on_event(ProgressEvent)``, after every compiled chunk of
optimisation steps (ten, :mod:`nc_core.optimise.steps`) and every epoch, and checks a
:class:`CancelToken` as often; so a progress bar stays live and a cancel lands within one chunk
(well under a second), while the classes already finished are kept.

    >>> token = CancelToken(); token.cancel(); token.cancelled
    True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run stands.

    ``kind`` is ``"class_start"``, ``"step"``, ``"epoch"`` or ``"class_done"``. ``class_index``
    counts the classes of this run (0-based) out of ``num_classes``; ``epoch`` and ``step`` are
    1-based. ``metrics`` holds the epoch's means (``loss``, ``ce``, ``l1``, ``asr``, ``lam``) on
    ``epoch`` events and the class result (``l1``, ``asr``) on ``class_done``. ``overall``, set
    by a scan (:class:`ScanProgress`), is the share of the whole scan done, and ``phase`` which
    part of it runs (``screen``, ``full`` or ``confirm``). ``trigger``, on ``epoch`` events, gives
    the class's current mask and pattern when called (the dashboard's live view draws them).
    """

    kind: str
    target: int
    class_index: int
    num_classes: int
    epoch: int
    max_epochs: int
    step: int
    steps_per_epoch: int
    elapsed: float
    metrics: dict[str, float] = field(default_factory=dict)
    overall: float | None = None
    phase: str = ""
    trigger: Callable[[], tuple] | None = field(default=None, repr=False, compare=False)

    @property
    def fraction(self) -> float:
        """Share of the run's planned steps done (an upper bound on the remaining work)."""
        if self.overall is not None:
            return self.overall
        per_class = max(self.max_epochs * self.steps_per_epoch, 1)
        done_in_class = (max(self.epoch - 1, 0) * self.steps_per_epoch + self.step) / per_class
        if self.kind == "class_done":
            done_in_class = 1.0
        return min((self.class_index + min(done_in_class, 1.0)) / max(self.num_classes, 1), 1.0)


EventCallback = Callable[[ProgressEvent], None]


class ScanProgress:
    """A scan's progress as a share of its planned optimisation steps, never going back.

    A scan does not know its work in advance: which classes get the full schedule after the
    screen, which close calls need restarts, when each run stops early. So it keeps a plan of
    the runs still to come, each at its most epochs, and reports ``done / (done + planned)``.
    Early stops make the bar jump forward; a plan that grows only holds it still (the share
    shown never decreases), so the ETA computed from it stays an honest upper bound.

    Each run gets its own callback, ``progress.run(epochs)``, to pass as ``on_event`` to
    :func:`~nc_core.optimise.schedule.reverse_target`. Two runs of 5 epochs are 100 steps; when
    the first stops early after 2 epochs, its unused 3 leave the plan: 20 steps done of 70.

        >>> shown = []
        >>> progress = ScanProgress(shown.append, steps_per_epoch=10); progress.plan([5, 5])
        >>> on_event = progress.run(5)
        >>> on_event(ProgressEvent("class_done", target=3, class_index=0, num_classes=1, epoch=2, max_epochs=5,
        ...                        step=10, steps_per_epoch=10, elapsed=1.0))
        >>> f"{shown[-1].overall:.0%} of {shown[-1].num_classes} runs"
        '29% of 2 runs'
    """

    def __init__(self, on_event: EventCallback | None, steps_per_epoch: int):
        self.on_event = on_event
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.done = 0
        self.planned = 0
        self.running: dict[int, tuple[int, int]] = {}  # run index -> (steps done, most steps)
        self.runs_started = 0
        self.runs_planned = 0
        self.shown = 0.0
        self.phase = ""

    def plan(self, epochs_per_run: Sequence[int]) -> None:
        """Add runs to the plan (each at its most epochs)."""
        self.planned += sum(epochs_per_run) * self.steps_per_epoch
        self.runs_planned += len(epochs_per_run)

    def replan(self, epochs_per_run: Sequence[int]) -> None:
        """Replace the runs still to come by these."""
        self.planned, self.runs_planned = 0, self.runs_started
        self.plan(epochs_per_run)

    def run(self, epochs: int, first_epoch: int = 1) -> EventCallback:
        """The event callback of the next run, of at most ``epochs`` epochs (taken off the plan),
        numbered from ``first_epoch`` (a run continued from a checkpoint goes on counting).
        Several runs may be under way at once (the batched engine)."""
        budget = epochs * self.steps_per_epoch
        self.planned = max(self.planned - budget, 0)
        self.runs_planned = max(self.runs_planned, self.runs_started + 1)
        index, self.runs_started = self.runs_started, self.runs_started + 1
        self.running[index] = (0, budget)

        def report(event: ProgressEvent) -> None:
            in_run = max((event.epoch - first_epoch) * event.steps_per_epoch + event.step, 0)
            if event.kind == "class_done":
                self.done += max(event.epoch - first_epoch + 1, 0) * event.steps_per_epoch
                self.running.pop(index, None)
            else:
                self.running[index] = (in_run, budget)
            under_way = sum(steps for steps, _ in self.running.values())
            total = self.done + sum(max(steps, most) for steps, most in self.running.values()) + self.planned
            self.shown = max(self.shown, min((self.done + under_way) / total, 1.0) if total else 1.0)
            if self.on_event is not None:
                self.on_event(
                    replace(
                        event, class_index=index, num_classes=self.runs_planned, overall=self.shown, phase=self.phase
                    )
                )

        return report


class CancelToken:
    """A flag a user sets to stop a run; an optional ``check`` lets another process set it.

    A worker asks its run store whether the page asked to cancel
    (:meth:`~nc_core.runs.store.RunStore.request_cancel`):

    >>> from nc_core.runs.store import RunStore
    >>> store = RunStore(); run_id = store.create_run("scan", "m.keras", "d.npz", {})
    >>> token = CancelToken(check=lambda: store.cancel_requested(run_id))
    >>> token.cancelled
    False
    >>> store.request_cancel(run_id)  # the page's Cancel button
    >>> token.cancelled
    True
    """

    def __init__(self, check: Callable[[], bool] | None = None):
        self._event = threading.Event()
        self._check = check

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        if not self._event.is_set() and self._check is not None and self._check():
            self._event.set()
        return self._event.is_set()
