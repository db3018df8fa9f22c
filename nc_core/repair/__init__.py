"""Repair: remove the backdoor a scan found, with before/after figures on held-out data and a re-scan.

The second half of Neural Cleanse (section VI of the paper): unlearning (fine-tune on clean data,
part of it stamped with the reversed triggers, true labels kept) or pruning the units the triggers
excite. Layers: :mod:`.config` (the knobs), :mod:`.triggers` (what to remove, and the real trigger
when known), :mod:`.evaluation` (held-out split and figures), :mod:`.unlearning` and
:mod:`.pruning` (the two methods), :mod:`.core` (rounds, results, re-scan).

    >>> from nc_core.repair import RepairConfig, repair, rescan
    >>> result = repair(model, inputs.data, report, RepairConfig())
    >>> result.table()
"""
from nc_core.repair.config import METHODS, RepairConfig
from nc_core.repair.core import RepairResult, RepairRound, repair, rescan
from nc_core.repair.evaluation import Figures, measure, split_holdout
from nc_core.repair.triggers import Trigger, trigger_from_card, trigger_from_images, triggers_to_remove

__all__ = ["METHODS", "Figures", "RepairConfig", "RepairResult", "RepairRound", "Trigger", "measure", "repair",
           "rescan", "split_holdout", "trigger_from_card", "trigger_from_images", "triggers_to_remove"]
