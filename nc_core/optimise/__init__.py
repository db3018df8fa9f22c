"""Optimising triggers: the Trigger layer, the engines that train it, the paper's schedule.

Modules: :mod:`.masks` and :mod:`.trigger` (the mask and pattern, in NumPy and as a Keras layer),
:mod:`.epoch` and :mod:`.steps` (what an epoch is, and many steps per compiled call),
:mod:`.engine` (Keras 3), :mod:`.batched` (several classes per step, for accelerators),
:mod:`.legacy` and :mod:`.legacy_worker` (the original ``K.function`` loop, in a child process),
:mod:`.config` (``CleanseConfig``), :mod:`.results` (``TriggerResult`` and whether it converged),
:mod:`.schedule` (the lambda schedule, ``Reversal``, ``reverse_target``), :mod:`.threads`
(classes side by side on CPU threads), :mod:`.runner` (``reverse_engineer`` and the scan's
``ReversalRunner``: engines made and classes run), :mod:`.cluster` (``RayCluster``: where Ray
runs, started or joined), :mod:`.ray_runner` (``RayReversalRunner``: a scan's classes as Ray
tasks) and :mod:`.progress` (events, the scan's progress bar, cancel tokens). Nothing here
decides a verdict: that is :mod:`nc_core.detection`.

    >>> from nc_core import CleanseConfig, KerasEngine
"""
