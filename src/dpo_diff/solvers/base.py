"""What a solver is: something that spends a :class:`~dpo_diff.problem.Problem`'s budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..problem import Problem
from ..spaces import Choice


class Solver(Protocol):
    name: str

    @classmethod
    def create(cls, options: SolverOptions) -> Solver:
        """The solver a run asks for (gradient solvers read the gradient options; others ignore them)."""

    def run(self, problem: Problem) -> None:
        """Evaluate candidates through ``problem`` until its budget or space is spent."""


@dataclass(frozen=True)
class SolverOptions:
    """The run options a solver may read (``--estimator``/``--k`` built into ``estimator``)."""

    estimator: object = None
    schedule: str = "step-15-2"
    iterations: int = 20
    gpo_style: str = "authors"


def fresh_random(problem: Problem, n: int, tries_per_item: int = 20) -> list[Choice]:
    """Up to ``n`` distinct, not yet evaluated, uniformly random choices."""
    out: list[Choice] = []
    for _ in range(n * tries_per_item):
        if len(out) >= n:
            break
        c = problem.random_choice()
        if problem.is_new(c) and c not in out:
            out.append(c)
    return out
