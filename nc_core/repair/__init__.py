"""Repair: remove the backdoor a scan found, with before/after figures on held-out data and a re-scan.

The second half of Neural Cleanse (section VI of the paper): unlearning (fine-tune on clean data,
part of it stamped with the reversed triggers, true labels kept) or pruning the units the triggers
excite. Layers: :mod:`.config` (the knobs), :mod:`.triggers` (what to remove, and the real trigger
when known), :mod:`.evaluation` (held-out split and figures), :mod:`.unlearning` and
:mod:`.pruning` (the two methods), :mod:`.core` (rounds, results, re-scan). Names are imported
lazily, so the command line can read :class:`RepairConfig` without loading Keras.

One round of unlearning on the MNIST sample, without restarts; its figures before and after, on
held-out digits:

    >>> from nc_core.repair import RepairConfig, repair
    >>> repaired = repair(model, inputs.data, report, RepairConfig(max_rounds=1, restarts=0))
    >>> for row in repaired.table():
    ...     print(f"{row['figure']}: {row['before']:.2f} -> {row['after']:.2f}")
    clean accuracy: 0.98 -> 0.98
    attack success, reversed trigger of class 7: 0.99 -> 0.0...
"""

from nc_core._lazy import lazy_getattr

_EXPORTS = {
    "REPAIR_METHODS": "nc_core.repair.config",
    "RepairConfig": "nc_core.repair.config",
    "RepairResult": "nc_core.repair.core",
    "RepairRound": "nc_core.repair.core",
    "repair": "nc_core.repair.core",
    "rescan": "nc_core.repair.core",
    "Figures": "nc_core.repair.evaluation",
    "measure": "nc_core.repair.evaluation",
    "split_holdout": "nc_core.repair.evaluation",
    "RepairTrigger": "nc_core.repair.triggers",
    "trigger_from_card": "nc_core.repair.triggers",
    "trigger_from_images": "nc_core.repair.triggers",
    "triggers_to_remove": "nc_core.repair.triggers",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
