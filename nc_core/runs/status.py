"""Where a run stands: the statuses a stored run can have, and which of them mean "working".

>>> "running" in ACTIVE
True
"""

#: A worker has the run (or is about to): it may still change.
ACTIVE = ("queued", "running")
#: Every status a run can have; the last four are final.
STATUSES = ("queued", "running", "done", "cancelled", "failed", "interrupted")
