"""Gradient estimators for the relaxed prompt: the shortcut and full backpropagation."""

from ..errors import DpoDiffError
from .full import FullEstimator
from .schedules import timestep_schedule, to_run_steps
from .shortcut import ShortcutEstimator

ESTIMATORS = ("shortcut", "full", "full-checkpoint")


def make_estimator(name: str, k: int = 1):
    """``shortcut`` (K grad steps), ``full`` or ``full-checkpoint``."""
    if name == "shortcut":
        return ShortcutEstimator(k)
    if name in ("full", "full-checkpoint"):
        return FullEstimator(checkpoint=name == "full-checkpoint")
    raise DpoDiffError(f"unknown estimator '{name}': use {', '.join(ESTIMATORS)}")


__all__ = ["ESTIMATORS", "FullEstimator", "ShortcutEstimator", "make_estimator", "timestep_schedule", "to_run_steps"]
