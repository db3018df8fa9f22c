"""The knobs of a repair, with the paper's unlearning as the reference.

Neural Cleanse's unlearning (Wang et al., 2019, section VI-C) fine-tunes the model on clean data
where about 20 % of the images carry the reversed trigger but keep their true label, for a short
run at a small learning rate. Our defaults follow it; what the paper leaves open (how many epochs,
which learning rate, how to hold data back) is explicit here, with values measured on the
shipped samples (BENCHMARKS.md, "Repair").

    >>> RepairConfig(epochs=3).validate(num_samples=500, num_classes=10)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from nc_core.errors import InvalidParameterError

REPAIR_METHODS = ("unlearning", "pruning")
#: Fewest labelled samples per class the split needs: some to fine-tune on, one held out.
MIN_SAMPLES_PER_CLASS = 3


@dataclass(frozen=True)
class RepairConfig:
    """How to remove the backdoor a scan found.

    ``stamp_share`` of the fine-tune images carry a reversed trigger (true labels kept) in each
    epoch; ``epochs`` passes at Adam's ``learning_rate`` make one round. After a round the
    flagged classes are reverse-engineered again on the repaired model: while one still needs a
    mask below ``max_ratio`` of the scan's median (so it would still stand out), its new trigger
    joins the unlearning set and another round runs, up to ``max_rounds``. Before the first round
    each flagged class is also reverse-engineered ``restarts`` more times from fresh random starts:
    each run finds a different few pixels of the real trigger, and together they cover more. Why rounds: a reversed
    trigger is the *smallest* one that works, often a few pixels of the real patch; unlearning it
    leaves the rest of the patch working, and the next reversal finds that rest.

    ``holdout_share`` of each class is never trained on: every before/after figure is measured
    there. ``method="pruning"`` zeroes, instead of fine-tuning, the units of the last hidden layer
    that the triggers excite most, ``prune_step`` of them at a time, until the reversed triggers'
    attack success on the fine-tune part is at most ``target_asr`` or ``prune_max_share`` of the
    layer is gone. BatchNorm layers stay frozen (their statistics come from the full training set,
    not from a few hundred samples).

    ``max_accuracy_drop`` is the clean accuracy the repair may cost on the held-out samples: a
    repair past it is reported as failing its budget (the CLI exits non-zero, the dashboard warns),
    since a model that lost more is not one to deploy.
    """

    method: str = "unlearning"
    epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 32
    stamp_share: float = 0.2
    grow_pixels: int = 2
    max_rounds: int = 3
    restarts: int = 2
    max_ratio: float = 0.5
    holdout_share: float = 0.3
    target_asr: float = 0.05
    prune_step: float = 0.02
    prune_max_share: float = 0.3
    max_accuracy_drop: float = 0.05
    seed: int = 0

    def replace(self, **changes) -> RepairConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self, num_samples: int, num_classes: int) -> None:
        """Refuse settings that cannot run, with a sentence the user understands."""
        checks = [
            (
                self.method in REPAIR_METHODS,
                f"The repair method must be one of {', '.join(REPAIR_METHODS)}, not {self.method!r}.",
            ),
            (1 <= self.epochs <= 1000, f"Repair epochs must be between 1 and 1000, not {self.epochs}."),
            (0 < self.learning_rate <= 1, f"The repair learning rate must be in (0, 1], not {self.learning_rate}."),
            (
                1 <= self.batch_size <= num_samples,
                f"The repair batch size must be between 1 and the {num_samples} samples, not {self.batch_size}.",
            ),
            (0 < self.stamp_share < 1, f"The share of stamped images must be in (0, 1), not {self.stamp_share}."),
            (0 <= self.grow_pixels <= 8, f"Trigger growth must be 0 to 8 pixels, not {self.grow_pixels}."),
            (0 <= self.restarts <= 10, f"Repair restarts must be between 0 and 10, not {self.restarts}."),
            (1 <= self.max_rounds <= 20, f"Repair rounds must be between 1 and 20, not {self.max_rounds}."),
            (0 < self.max_ratio <= 1, f"The mask-size ratio must be in (0, 1], not {self.max_ratio}."),
            (0 < self.holdout_share < 1, f"The held-out share must be in (0, 1), not {self.holdout_share}."),
            (0 <= self.target_asr < 1, f"The target attack success must be in [0, 1), not {self.target_asr}."),
            (0 < self.prune_step <= self.prune_max_share <= 1, "Pruning needs 0 < prune_step <= prune_max_share <= 1."),
            (
                0 <= self.max_accuracy_drop <= 1,
                f"The clean-accuracy budget must be in [0, 1], not {self.max_accuracy_drop}.",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidParameterError(message)
