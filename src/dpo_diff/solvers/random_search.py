"""Random search: uniform samples from the space, the baseline every solver must beat."""

from __future__ import annotations

from ..problem import Problem
from .base import fresh_random


class RandomSearch:
    name = "random"

    @classmethod
    def create(cls, options) -> RandomSearch:
        return cls()

    def __init__(self, batch: int = 20):
        self.batch = batch

    def run(self, problem: Problem) -> None:
        while not problem.done:
            batch = fresh_random(problem, self.batch)
            if not batch:
                break
            problem.evaluate(batch)
