"""The Neural Cleanse settings, as form fields; the reverse and scan pages put them in their forms.

Defaults come from :class:`~nc_core.optimise.config.CleanseConfig` itself, so the dashboard, the CLI and
the library start from the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard.page import ray_address
from nc_core.detection.detect import DetectionRule
from nc_core.detection.probe import PROBE_MIN_CLASSES
from nc_core.optimise.config import ENGINES, CleanseConfig
from nc_core.optimise.masks import MASK_METHODS

ENGINE_HELP = (
    "keras: the Keras 3 engine (one compiled training step, fast). "
    "legacy: the tutorial's Keras 2 loop (optimizer.get_updates and K.function) run in a "
    "tf_keras child process, for comparison with the original code; slower."
)
METHOD_HELP = (
    "neural-cleanse: the paper's method, a one-channel mask in tanh space with an L1 penalty "
    "whose weight lambda adapts, keeping the smallest mask that still flips the model. "
    "plain: the tutorial's version, free mask and pattern and cross-entropy only (no penalty)."
)


RAY_HELP = (
    "Each class runs as a task on the Ray cluster this server's operator set up (NC_RAY_ADDRESS), one "
    "CPU each; the results are the same as here, only faster where the cluster has more cores. The "
    "keras engine only."
)


@dataclass(frozen=True)
class RunSettings:
    """What the form returns: the optimisation's config, the sample limit, the detection rule, and
    where the classes run (the operator's Ray address, or None for the server itself)."""

    config: CleanseConfig
    max_samples: int | None
    rule: DetectionRule = DetectionRule()
    ray: str | None = None


def settings_fields(key: str, ray: bool = False) -> RunSettings:
    """Epochs, batch size, learning rate, method and engine, plus the rarer knobs folded away;
    with ``ray``, the choice to run on the operator's Ray cluster, where one is configured."""

    default = CleanseConfig()
    left, middle, right = st.columns(3)
    epochs = left.number_input(
        "Epochs (at most)",
        1,
        100_000,
        default.epochs,
        key=f"{key}_epochs",
        help="Early stop usually ends a class sooner.",
    )
    batch_size = middle.number_input("Batch size", 1, 4096, default.batch_size, key=f"{key}_batch")
    learning_rate = right.number_input(
        "Learning rate", 1e-5, 10.0, default.learning_rate, format="%.4f", key=f"{key}_lr"
    )
    left, right = st.columns(2)
    method = left.selectbox(
        "Method", MASK_METHODS, index=MASK_METHODS.index(default.method), help=METHOD_HELP, key=f"{key}_method"
    )
    engine = right.selectbox(
        "Engine", ENGINES, index=ENGINES.index(default.engine), help=ENGINE_HELP, key=f"{key}_engine"
    )
    on_ray = ray_field(key) if ray else None
    with st.expander("More settings"):
        left, middle, right = st.columns(3)
        samples_per_epoch = left.number_input(
            "Samples per epoch", 1, 1_000_000, default.samples_per_epoch, key=f"{key}_spe"
        )
        patience = middle.number_input("Patience (lambda)", 1, 1000, default.patience, key=f"{key}_patience")
        early_stop_patience = right.number_input(
            "Early-stop patience", 1, 10_000, default.early_stop_patience, key=f"{key}_esp"
        )
        left, middle, right = st.columns(3)
        threshold = left.number_input(
            "Attack success threshold", 0.01, 1.0, default.attack_succ_threshold, format="%.2f", key=f"{key}_threshold"
        )
        seed = middle.number_input("Seed", 0, 2**31 - 1, default.seed, key=f"{key}_seed")
        max_samples = right.number_input("Use at most N samples (0 = all)", 0, 10_000_000, 0, key=f"{key}_max")
        left, middle, probe_column, right = st.columns(4, vertical_alignment="bottom")
        confirm_runs = left.number_input(
            "Confirmation restarts",
            0,
            10,
            default.confirm_runs,
            key=f"{key}_confirm",
            help="Scans only: each class the first pass flags is optimised this many more times from fresh "
            "random starts, and keeps the median L1. 0 is the paper's single run.",
        )
        screen_epochs = middle.number_input(
            "Screen epochs",
            0,
            100_000,
            default.screen_epochs,
            key=f"{key}_screen",
            help="Scans only: every class first runs this many epochs; only the classes that could change the "
            "verdict (and a few reference classes) then get the full schedule. 0 runs every class in full.",
        )
        probe_epochs = probe_column.number_input(
            "Probe epochs",
            0,
            100_000,
            default.probe_epochs,
            key=f"{key}_probe",
            help=f"Scans of {PROBE_MIN_CLASSES} classes or more: every class first runs this many epochs; only a "
            "random sample and the targets most easily reached are then screened. 0 screens every class.",
        )
        early_stop = right.checkbox("Early stop", default.early_stop, key=f"{key}_early_stop")
        rule = rule_fields(key)
    config = CleanseConfig(
        method=method,
        engine=engine,
        epochs=int(epochs),
        batch_size=int(batch_size),
        learning_rate=float(learning_rate),
        samples_per_epoch=int(samples_per_epoch),
        patience=int(patience),
        early_stop=bool(early_stop),
        early_stop_patience=int(early_stop_patience),
        attack_succ_threshold=float(threshold),
        seed=int(seed),
        confirm_runs=int(confirm_runs),
        screen_epochs=int(screen_epochs),
        probe_epochs=int(probe_epochs),
    )
    return RunSettings(config, int(max_samples) or None, rule, on_ray)


def ray_field(key: str) -> str | None:
    """A checkbox that sends the run to the operator's Ray cluster: its address when ticked, None
    when not or when none is configured (then nothing is shown). The address itself stays off the page."""
    address = ray_address()
    if address is None:
        return None
    label = "Run the classes on the server's Ray cluster"
    if address == "local":
        label = "Run the classes on Ray workers, one per core"
    elif address.startswith("local:"):
        label = f"Run the classes on {address.removeprefix('local:')} Ray workers"
    return address if st.checkbox(label, key=f"{key}_ray", help=RAY_HELP) else None


def rule_fields(key: str) -> DetectionRule:
    """The detection rule's five numbers (see nc_core.detection.detect), defaulting to the product's."""
    default = DetectionRule()
    left, right = st.columns(2)
    threshold = left.number_input(
        "Stand-out threshold (log index)",
        0.1,
        100.0,
        default.threshold,
        key=f"{key}_index_threshold",
        help="A class stands out when its robust index on log mask sizes is above this (2, as in the paper); "
        "a mask far below the median ratio needs less, down to this over sqrt(2).",
    )
    max_ratio = right.number_input(
        "Flag masks at most this share of the median L1",
        0.01,
        1.0,
        default.max_ratio,
        key=f"{key}_max_ratio",
        help="A backdoor needs a FAR smaller mask; naturally similar classes stand out at about 0.6 of the median.",
    )
    left, right = st.columns(2)
    min_compactness = left.number_input(
        "Compact mask: at least this share in two small windows",
        0.01,
        1.0,
        default.min_compactness,
        key=f"{key}_min_compactness",
        help="An injected patch is compact; a natural feature is scattered over the object.",
    )
    extreme_ratio = right.number_input(
        "Flag any shape at most this share of the median",
        0.01,
        1.0,
        default.extreme_ratio,
        key=f"{key}_extreme_ratio",
        help="Masks this small need no shape evidence.",
    )
    max_boundary = left.number_input(
        "Compact mask: edge at most this many times a square's",
        0.1,
        100.0,
        default.max_boundary,
        key=f"{key}_max_boundary",
        help="A stamped patch has a short edge for its area; strokes and scattered pixels have long ones.",
    )
    return DetectionRule(
        float(threshold), float(max_ratio), float(min_compactness), float(extreme_ratio), float(max_boundary)
    )
