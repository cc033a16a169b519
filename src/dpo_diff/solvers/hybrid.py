"""Hybrid: GPO learns a distribution, EPO starts from it.

The evolution's initial population is the learned argmax plus samples of the learned
distribution (the authors' release seeded it uniformly, so GPO's work was lost). The samples
cover the whole space: candidates and slots GPO could not relax (several tokens) are drawn from
the prior (:meth:`~dpo_diff.relaxation.RelaxedChoice.space_logits`), and EPO then mutates and
crosses over every slot, multi-token candidates included.
"""

from __future__ import annotations

from ..problem import Problem
from .evolution import EvolutionSolver
from .gradient import GradientSolver


class HybridSolver:
    name = "hybrid"

    @classmethod
    def create(cls, options) -> HybridSolver:
        return cls(GradientSolver.create(options))

    def __init__(self, gradient: GradientSolver | None = None, evolution: EvolutionSolver | None = None):
        self.gradient = gradient or GradientSolver()
        self.evolution = evolution or EvolutionSolver()

    def run(self, problem: Problem) -> None:
        relaxed = self.gradient.learn(problem)
        initial = self.gradient.samples(problem, relaxed, self.evolution.population)
        self.evolution.run(problem, initial=initial)
