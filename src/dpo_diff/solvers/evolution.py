"""EPO: evolutionary prompt optimization over the discrete space.

Each generation keeps the ``parents`` best candidates seen so far, makes ``mutations``
children by resampling each slot with probability ``mutation_p`` and ``crossovers``
children by uniform crossover of two parents, and evaluates those that are new: no genome
is evaluated twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..problem import Problem
from ..spaces import Choice
from .base import fresh_random


class EvolutionSolver:
    name = "epo"

    @classmethod
    def create(cls, options) -> EvolutionSolver:
        return cls()

    def __init__(
        self,
        population: int = 20,
        parents: int = 10,
        mutations: int = 10,
        crossovers: int = 10,
        mutation_p: float = 0.1,
        tries: int = 20,
    ):
        self.population = population
        self.parents = parents
        self.mutations = mutations
        self.crossovers = crossovers
        self.mutation_p = mutation_p
        self.tries = tries

    def _mutate(self, problem: Problem, parent: Choice) -> Choice:
        rng = problem.rng
        child = list(parent)
        for i, k in enumerate(problem.space.sizes):
            if k > 1 and rng.random() < self.mutation_p:
                child[i] = rng.choice([j for j in range(k) if j != parent[i]])
        return tuple(child)

    def _crossover(self, problem: Problem, a: Choice, b: Choice) -> Choice:
        return tuple(x if problem.rng.random() < 0.5 else y for x, y in zip(a, b))

    def _children(self, problem: Problem, parents: list[Choice]) -> list[Choice]:
        children: list[Choice] = []

        def add(make) -> None:
            for _ in range(self.tries):
                child = make()
                if problem.is_new(child) and child not in children:
                    children.append(child)
                    return

        for _ in range(self.mutations):
            add(lambda: self._mutate(problem, problem.rng.choice(parents)))
        if len(parents) > 1:
            for _ in range(self.crossovers):
                add(lambda: self._crossover(problem, *problem.rng.sample(parents, 2)))
        return children

    def run(self, problem: Problem, initial: Sequence[Choice] = ()) -> None:
        population = [c for c in dict.fromkeys(initial) if problem.is_new(c)][: self.population]
        population += fresh_random(problem, self.population - len(population))
        problem.evaluate(population)
        while not problem.done:
            children = self._children(problem, problem.top(self.parents))
            if not children:  # the neighbourhood is spent: widen with fresh samples
                children = fresh_random(problem, self.mutations + self.crossovers)
                if not children:
                    break
            problem.evaluate(children)
