"""Errors a user can act on. The CLI prints ``str(error)`` as one line and exits non-zero."""


class DpoDiffError(Exception):
    """Base class: bad input or an unusable environment, explained in one line."""

    exit_code = 2


class ModelNotFoundError(DpoDiffError):
    """A model id or folder that cannot be loaded."""


class SpaceError(DpoDiffError):
    """A search space that cannot be built (missing WordNet data, LLM endpoint down, bad file)."""


class BudgetError(DpoDiffError):
    """A budget that cannot pay for a single evaluation."""
