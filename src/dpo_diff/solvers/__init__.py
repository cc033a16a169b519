"""Solvers, all spending the same budget of UNet passes: random, epo, gpo, hybrid."""

from ..errors import DpoDiffError
from .base import Solver
from .evolution import EvolutionSolver
from .gradient import GradientSolver
from .hybrid import HybridSolver
from .random_search import RandomSearch

SOLVERS = {"random": RandomSearch, "epo": EvolutionSolver, "gpo": GradientSolver, "hybrid": HybridSolver}


def make_solver(
    name: str, estimator=None, schedule: str = "step-15-2", iterations: int = 20, gpo_style: str = "authors"
) -> Solver:
    """A solver by name; gradient options apply to gpo and hybrid."""
    key = name.strip().lower()
    if key not in SOLVERS:
        raise DpoDiffError(f"unknown solver '{name}': use {', '.join(SOLVERS)}")
    gradient = GradientSolver(iterations=iterations, schedule=schedule, estimator=estimator, style=gpo_style)
    if key == "gpo":
        return gradient
    if key == "hybrid":
        return HybridSolver(gradient)
    return SOLVERS[key]()


__all__ = ["SOLVERS", "EvolutionSolver", "GradientSolver", "HybridSolver", "RandomSearch", "Solver", "make_solver"]
