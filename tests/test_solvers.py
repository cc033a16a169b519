"""Solvers: equal-cost budgets, no genome evaluated twice, batched = one-at-a-time, hybrid uses GPO."""

import pytest
import torch

from dpo_diff.cost import CostMeter
from dpo_diff.objectives import ClipLoss
from dpo_diff.problem import Problem
from dpo_diff.sampling import SamplingConfig
from dpo_diff.solvers import SOLVERS, EvolutionSolver, GradientSolver, HybridSolver, make_solver
from dpo_diff.spaces import build_space

from .conftest import PROMPT


def make_problem(engine, budget, kind="antonym+nplib", seed=0, batch=8, maximize=False):
    model = engine.model
    model.meter = CostMeter(budget)
    space = build_space(PROMPT, kind, token_ids=model.word_token_ids)
    problem = Problem(
        model=model, space=space, objective=ClipLoss(engine.scorer, PROMPT),
        sampling=SamplingConfig((0,), steps=4, guidance=7.5), maximize=maximize, seed=seed, eval_batch_size=batch,
    )
    seen = []
    original = problem._losses

    def recording(choices):
        seen.extend(choices)
        return original(choices)

    problem._losses = recording
    return problem, seen


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_every_solver_stops_at_the_budget_and_never_repeats(engine, name):
    problem, seen = make_problem(engine, budget=200)
    problem.evaluate([problem.space.initial_choice])
    make_solver(name, iterations=4).run(problem)
    assert problem.meter.used <= 200
    assert problem.meter.used > 200 - problem.eval_cost - 40  # spent nearly all of it
    assert len(seen) == len(set(seen))
    assert problem.best_loss <= problem.evaluated[problem.space.initial_choice]


def test_batched_evaluation_equals_one_at_a_time(engine):
    problem, _ = make_problem(engine, budget=None, batch=8)
    choices = [problem.random_choice() for _ in range(6)]
    choices = list(dict.fromkeys(choices))
    batched = dict(problem.evaluate(choices))
    single, _ = make_problem(engine, budget=None, batch=1)
    one = dict(single.evaluate(choices))
    for c in choices:
        assert abs(batched[c] - one[c]) < 1e-4


def test_hybrid_seeds_evolution_with_what_gpo_learned(engine, monkeypatch):
    problem, _ = make_problem(engine, budget=400)
    captured = {}
    original_run = EvolutionSolver.run

    def spy(self, problem, initial=()):
        captured["initial"] = list(initial)
        return original_run(self, problem, initial)

    monkeypatch.setattr(EvolutionSolver, "run", spy)
    gradient = GradientSolver(iterations=4)
    learned = {}
    original_learn = GradientSolver.learn

    def learn(self, problem):
        relaxed = original_learn(self, problem)
        learned["argmax"] = relaxed.argmax()
        learned["logits"] = relaxed.logits.detach().clone()
        return relaxed

    monkeypatch.setattr(GradientSolver, "learn", learn)
    HybridSolver(gradient).run(problem)
    assert captured["initial"][0] == learned["argmax"]
    assert len(captured["initial"]) == 20
    assert not torch.all(learned["logits"] == 0)  # GPO moved the logits


def test_same_seed_same_search(engine):
    runs = []
    for _ in range(2):
        problem, seen = make_problem(engine, budget=160, seed=7)
        problem.evaluate([problem.space.initial_choice])
        make_solver("hybrid", iterations=3).run(problem)
        runs.append((seen, problem.best_choice, problem.best_loss))
    assert runs[0] == runs[1]


def test_epo_respects_a_space_smaller_than_the_budget(engine):
    problem, seen = make_problem(engine, budget=10_000, kind="antonym")
    assert problem.space.size == 2
    problem.evaluate([problem.space.initial_choice])
    EvolutionSolver().run(problem)
    assert len(seen) == 2 and problem.space_exhausted
