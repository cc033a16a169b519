"""dpo-diff: discrete prompt optimization for text-to-image diffusion models (DPO-Diff).

    >>> import dpo_diff
    >>> engine = dpo_diff.load("tiny")                      # or a Hub id / folder
    >>> result = dpo_diff.enhance("a red car parked on a quiet street", model=engine)
    >>> result.best.negative_prompt, result.best.loss <= result.initial.loss

Names are imported lazily, so ``dpo-diff --help`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Candidate": "results",
    "Engine": "engine",
    "OptimizationResult": "results",
    "RunConfig": "config",
    "Task": "task",
    "attack": "api",
    "enhance": "api",
    "load": "engine",
    "optimize": "api",
    "show_space": "api",
    "OBJECTIVES": "objectives",
    "Objective": "objectives",
    "BudgetError": "errors",
    "DpoDiffError": "errors",
    "ModelNotFoundError": "errors",
    "SpaceError": "errors",
    "LLMConfig": "spaces",
    "SearchSpace": "spaces",
    "Slot": "spaces",
    "build_space": "spaces",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .api import attack, enhance, optimize, show_space
    from .config import RunConfig
    from .engine import Engine, load
    from .objectives import OBJECTIVES, Objective
    from .results import Candidate, OptimizationResult
    from .task import Task
    from .errors import BudgetError, DpoDiffError, ModelNotFoundError, SpaceError
    from .spaces import LLMConfig, SearchSpace, Slot, build_space


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'dpo_diff' has no attribute {name!r}")
