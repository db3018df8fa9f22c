"""Progress events and cancellation, shared by the engines, the scan, the CLI and the dashboard.

A run reports through one callback, ``on_event(ProgressEvent)``, after every optimisation step
and every epoch, and checks a :class:`CancelToken` as often; so a progress bar stays live and a
cancel lands within one step, while the classes already finished are kept.

    >>> token = CancelToken(); token.cancel(); token.cancelled
    True
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run stands.

    ``kind`` is ``"class_start"``, ``"step"``, ``"epoch"`` or ``"class_done"``. ``class_index``
    counts the classes of this run (0-based) out of ``num_classes``; ``epoch`` and ``step`` are
    1-based. ``metrics`` holds the epoch's means (``loss``, ``ce``, ``l1``, ``asr``, ``lam``) on
    ``epoch`` events and the class result (``l1``, ``asr``) on ``class_done``.
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

    @property
    def fraction(self) -> float:
        """Share of the run's planned steps done (an upper bound on the remaining work)."""
        per_class = max(self.max_epochs * self.steps_per_epoch, 1)
        done_in_class = (max(self.epoch - 1, 0) * self.steps_per_epoch + self.step) / per_class
        if self.kind == "class_done":
            done_in_class = 1.0
        return min((self.class_index + min(done_in_class, 1.0)) / max(self.num_classes, 1), 1.0)


EventCallback = Callable[[ProgressEvent], None]


class CancelToken:
    """A flag a user sets to stop a run; an optional ``check`` lets another process set it.

    >>> token = CancelToken(check=lambda: store.is_cancel_requested(run_id))
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
