"""The optimisation's settings: every knob of a scan's schedule and engines, checked once.

A setting is added here (with its default and its check in :meth:`CleanseConfig.validate`) and
read where it is used; the dashboard's widgets and the command line's flags take their defaults
from this class, so the three never disagree.

    >>> CleanseConfig(epochs=30).steps_for(num_samples=1000)
    10
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from nc_core.errors import InvalidParameterError
from nc_core.optimise.masks import MASK_METHODS

ENGINES = ("keras", "legacy")
#: Fewer clean images than this cannot say whether a trigger works on inputs in general.
MIN_SAMPLES = 5


@dataclass(frozen=True)
class CleanseConfig:
    """Every knob of the optimisation, with the product's defaults.

    The paper's own defaults are :meth:`original`; the product's are cheaper (shorter epochs and
    patience) so a 43-class scan fits in minutes on a laptop CPU, with the same schedule.

    ``steps_per_epoch=None`` means ``min(N, samples_per_epoch) // batch_size`` mini-batches.
    ``confirm_runs`` re-runs each class the first pass flags from that many fresh random starts
    and keeps the median (see :func:`nc_core.detection.scan.scan`); the paper had none. ``screen_epochs``
    is the short first pass every class of a scan gets before only the classes that could change
    the verdict get the full schedule (:mod:`nc_core.detection.screen`); 0 gives every class the full one.
    ``probe_epochs`` is the still shorter pass before it in a scan of very many classes: only a
    random sample of classes and the ones most easily reached are then screened
    (:mod:`nc_core.detection.probe`), so the cost grows far slower than the number of classes.
    ``classes_per_step`` above 1 optimises that many classes of a scan in one batched step
    (:mod:`nc_core.optimise.batched`, the accelerator path; keras engine, neural-cleanse method).
    ``threads`` optimises that many classes side by side on CPU threads (:mod:`nc_core.optimise.threads`;
    0, the default, is one per core up to 4; keras engine, one class per step). It changes how
    fast a scan runs, never what it finds.
    """

    method: str = "neural-cleanse"
    engine: str = "keras"
    epochs: int = 60
    batch_size: int = 32
    samples_per_epoch: int = 320
    steps_per_epoch: int | None = None
    learning_rate: float = 0.1
    beta_1: float = 0.5
    beta_2: float = 0.9
    init_cost: float = 1e-3
    attack_succ_threshold: float = 0.99
    patience: int = 3
    cost_multiplier_up: float = 2.0
    cost_multiplier_down: float = 2.0**1.5
    early_stop: bool = True
    early_stop_threshold: float = 1.0
    early_stop_patience: int = 10
    confirm_runs: int = 2
    screen_epochs: int = 10
    #: Epochs of the probe every class of a very large scan gets before only some are screened
    #: (:mod:`nc_core.detection.probe`); 0 screens every class, however many.
    probe_epochs: int = 2
    classes_per_step: int = 1
    seed: int = 0
    threads: int = 0
    #: The max-margin detector run beside Neural Cleanse (:mod:`nc_core.detection.margin`): Adam
    #: steps and random starts per class; ``margin_steps=0`` runs Neural Cleanse alone.
    margin_steps: int = 300
    margin_starts: int = 8

    @classmethod
    def original(cls, **overrides) -> CleanseConfig:
        """The authors' GTSRB defaults: 1000 samples a epoch, up to 1000 epochs, patience 5/25.

        >>> CleanseConfig.original().epochs
        1000
        """
        paper = dict(
            epochs=1000,
            samples_per_epoch=1000,
            patience=5,
            early_stop_patience=25,
            confirm_runs=0,
            screen_epochs=0,
            probe_epochs=0,
        )
        return cls(**{**paper, **overrides})

    def replace(self, **changes) -> CleanseConfig:
        return replace(self, **changes)

    def steps_for(self, num_samples: int) -> int:
        """Mini-batches per epoch for a data set of ``num_samples`` images."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        return max(1, min(num_samples, self.samples_per_epoch) // self.batch_size)

    def validate(self, num_samples: int) -> None:
        """Refuse settings that cannot run, with a sentence the user understands."""
        checks = [
            (self.method in MASK_METHODS, f"Method must be one of {', '.join(MASK_METHODS)}, not {self.method!r}."),
            (self.engine in ENGINES, f"Engine must be one of {', '.join(ENGINES)}, not {self.engine!r}."),
            (
                num_samples >= MIN_SAMPLES,
                f"The data holds {num_samples} sample(s); a scan needs at least {MIN_SAMPLES} clean images.",
            ),
            (1 <= self.epochs <= 100_000, f"Epochs must be between 1 and 100000, not {self.epochs}."),
            (self.batch_size >= 1, f"Batch size must be at least 1, not {self.batch_size}."),
            (
                self.batch_size <= num_samples,
                f"Batch size {self.batch_size} is larger than the {num_samples} samples in the data.",
            ),
            (self.steps_per_epoch is None or self.steps_per_epoch >= 1, "Steps per epoch must be at least 1."),
            (self.samples_per_epoch >= 1, "Samples per epoch must be at least 1."),
            (0 < self.learning_rate <= 10, f"Learning rate must be in (0, 10], not {self.learning_rate}."),
            (0 <= self.beta_1 < 1 and 0 <= self.beta_2 < 1, "Adam's betas must be in [0, 1)."),
            (self.init_cost > 0, "The initial cost (lambda) must be above 0."),
            (0 < self.attack_succ_threshold <= 1, "The attack success threshold must be in (0, 1]."),
            (self.patience >= 1 and self.early_stop_patience >= 1, "Patience values must be at least 1."),
            (0 <= self.confirm_runs <= 10, f"Confirmation runs must be between 0 and 10, not {self.confirm_runs}."),
            (self.screen_epochs >= 0, f"Screen epochs must be 0 (no screen) or more, not {self.screen_epochs}."),
            (
                self.probe_epochs >= 0,
                f"Probe epochs must be 0 (no probe) or more, not {self.probe_epochs}.",
            ),
            (
                1 <= self.classes_per_step <= 1024,
                f"Classes per step must be between 1 and 1024, not {self.classes_per_step}.",
            ),
            (
                self.classes_per_step == 1 or (self.engine == "keras" and self.method == "neural-cleanse"),
                "Several classes per step need the keras engine and the neural-cleanse method.",
            ),
            (self.cost_multiplier_up > 1 and self.cost_multiplier_down > 1, "Cost multipliers must be above 1."),
            (0 <= self.threads <= 64, f"Threads must be between 0 (one per core) and 64, not {self.threads}."),
            (
                0 <= self.margin_steps <= 100_000,
                f"Max-margin steps must be between 0 (off) and 100000, not {self.margin_steps}.",
            ),
            (1 <= self.margin_starts <= 256, f"Max-margin starts must be between 1 and 256, not {self.margin_starts}."),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidParameterError(message)

    def to_dict(self) -> dict:
        return asdict(self)
