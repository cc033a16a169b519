"""Solvers, all spending the same budget of denoiser passes: random, epo, gpo, hybrid."""

from ..errors import DpoDiffError
from .base import Solver, SolverOptions
from .evolution import EvolutionSolver
from .gradient import GradientSolver
from .hybrid import HybridSolver
from .random_search import RandomSearch

SOLVERS: dict[str, type[Solver]] = {
    "random": RandomSearch,
    "epo": EvolutionSolver,
    "gpo": GradientSolver,
    "hybrid": HybridSolver,
}


def make_solver(
    name: str, estimator=None, schedule: str = "step-15-2", iterations: int = 20, gpo_style: str = "authors"
) -> Solver:
    """A solver by name; gradient options apply to gpo and hybrid."""
    key = name.strip().lower()
    if key not in SOLVERS:
        raise DpoDiffError(f"unknown solver '{name}': use {', '.join(SOLVERS)}")
    return SOLVERS[key].create(SolverOptions(estimator, schedule, iterations, gpo_style))


__all__ = ["SOLVERS", "EvolutionSolver", "GradientSolver", "HybridSolver", "RandomSearch", "Solver", "SolverOptions",
           "make_solver"]
