"""Errors a user can cause, each with a sentence the user understands.

Pages show ``str(error)`` with ``st.error``; the command line prints it on one line and exits 2.
Everything a user can get wrong raises a subclass of :class:`NCError`, so callers need one
``except`` clause to turn bad input into a message instead of a traceback.

    >>> from nc_core.loading.pixels import PixelRange
    >>> try:
    ...     PixelRange.parse("0-42")
    ... except NCError as error:
    ...     print(error)
    Unknown pixel range '0-42': use 0-1, 0-255, -1-1 or meanstd:MEAN/STD (per channel, ...).
"""


class NCError(Exception):
    """Base class of every error caused by what a user brought or asked for."""


class ModelLoadError(NCError):
    """The model file is missing, unreadable, unsafe, or not an image classifier."""


class UnsafeModelError(ModelLoadError):
    """The model holds code (a ``Lambda`` layer, a custom object) that safe mode refuses to run."""


class InvalidDataError(NCError):
    """The data is missing, unreadable, empty, or does not fit the model."""


class InvalidParameterError(NCError):
    """A run parameter (target class, epochs, batch size, ...) is out of range."""


class StoreError(NCError):
    """The run store cannot be read or written (unwritable directory, disk full, corrupt run)."""


class DuplicateRunError(NCError):
    """A bundle being imported is already in the run store, as run ``run_id``."""

    def __init__(self, run_id: str):
        super().__init__(f"This bundle was already imported, as run {run_id}.")
        self.run_id = run_id


class RunActiveError(NCError):
    """An operation that needs a finished run was asked of one still working (delete, say)."""


class RepairFailedError(NCError):
    """A repair that ran but gave a model that must not be kept (it diverged, say)."""


class RunCancelled(NCError):
    """A run was cancelled by the user; what finished before the cancel is kept."""
