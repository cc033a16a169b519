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
        learned["logits"] = relaxed.masked_logits().detach().clone()
        return relaxed

    monkeypatch.setattr(GradientSolver, "learn", learn)
    HybridSolver(gradient).run(problem)
    # the first seed is a mode of what GPO learned (ties at random, as in the authors' release)
    first, logits = captured["initial"][0], learned["logits"]
    assert all(logits[i, c] == logits[i].max() for i, c in enumerate(first))
    assert len(captured["initial"]) == 20
    moved = learned["logits"][torch.isfinite(learned["logits"])]
    assert not torch.all((moved == 0) | (moved == 1))  # GPO moved the logits from where they started


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
    size = problem.space.size
    assert 2 <= size <= 20 and size * problem.eval_cost < 10_000  # far fewer choices than the budget pays for
    problem.evaluate([problem.space.initial_choice])
    EvolutionSolver().run(problem)
    assert len(seen) == size and problem.space_exhausted


# ------------------------------------------------------------------ a planted optimum
class _PlantedProblem(Problem):
    """Loss = squared distance of a candidate's text conditioning (positive and negative) to that of a
    planted choice: exactly 0 at the planted choice, and, through the exact relaxation, a smooth
    function of the slot weights that GPO can descend. No images are made; each evaluation is
    charged as a real one would be."""

    def set_target(self, choice):
        self.target = choice
        self._goal = self._encode([choice])

    def _encode(self, choices):
        texts = [self.space.render(c) for c in choices]
        cond = self.model.encode([p for p, _ in texts]).embeds
        uncond = self.model.encode([n for _, n in texts]).embeds
        return torch.cat([cond, uncond], dim=1)

    def distance(self, encoded):
        return (encoded - self._goal).square().flatten(1).mean(1)

    def _losses(self, choices):
        self.meter.add_forward(self.eval_cost * len(choices))
        losses = self.distance(self._encode(choices))
        return losses.detach()[:, None], torch.zeros(len(choices), 1, 3, 2, 2)  # per choice and seed (one seed)


class _PlantedEstimator:
    """The planted distance of the relaxed conditioning, charged like a shortcut step."""

    name = "planted"

    def __init__(self, problem):
        self.problem = problem

    def cost(self, t, sampling, meter=None):
        return self.problem.eval_cost

    def loss(self, model, sampling, objective, encode, t):
        model.meter.add_forward(self.cost(t, sampling))
        cond, uncond = encode()
        return self.problem.distance(torch.cat([cond.embeds, uncond.embeds], dim=1)).mean()


def _planted_run(engine, name, seed, evaluations=60):
    model = engine.model
    model.meter = CostMeter()
    space = build_space(PROMPT, "synonym+antonym+nplib", token_ids=model.word_token_ids)
    problem = _PlantedProblem(model=model, space=space, objective=None,
                              sampling=SamplingConfig((0,), steps=4, guidance=7.5), seed=seed)
    rng = __import__("random").Random(100 + seed)
    problem.set_target(tuple(rng.randrange(n) for n in space.sizes))
    model.meter.budget = evaluations * problem.eval_cost
    problem.evaluate([space.initial_choice])
    solver = make_solver(name, estimator=_PlantedEstimator(problem), iterations=10)
    solver.run(problem)
    return problem.best_loss, problem.best_choice == problem.target, space.size


def test_solvers_beat_random_search_on_a_planted_optimum(engine):
    """Same budget (60 evaluations: EPO's first population of 20 and four generations), same planted
    targets, 4 search seeds: every solver must end closer to the planted optimum than random search
    does on average. A solver that ignored its fitness (or its gradient) would not. (At 30
    evaluations EPO is mostly its random first population, and whether it beats random search
    turned on the space's shape.)"""
    results = {name: [_planted_run(engine, name, seed) for seed in range(4)] for name in ("random", "epo", "gpo", "hybrid")}
    size = results["random"][0][2]
    assert size > 10_000  # far more choices than evaluations: luck cannot find the target
    mean = {name: sum(r[0] for r in runs) / len(runs) for name, runs in results.items()}
    for name in ("epo", "gpo", "hybrid"):
        assert mean[name] < mean["random"], mean
    assert sum(r[1] for r in results["hybrid"]) >= sum(r[1] for r in results["random"])


def test_gpo_styles_follow_the_authors_by_default(engine):
    from dpo_diff.relaxation import RelaxedChoice

    problem, _ = make_problem(engine, budget=None)
    authors, previous = GradientSolver(), GradientSolver(style="previous")
    assert authors.style == "authors"
    relaxed = RelaxedChoice(torch.ones(3, 4, dtype=torch.bool))
    with torch.no_grad():
        relaxed.logits.fill_(3.0)  # every candidate tied (all at the clamp)
    picks = {authors.argmax(problem, relaxed) for _ in range(20)}
    assert len(picks) > 1  # ties broken at random
    assert previous.argmax(problem, relaxed) == (0, 0, 0)  # ties to the first candidate
    with pytest.raises(Exception, match="GPO style"):
        GradientSolver(style="mine")


def _mixed_problem(engine, tmp_path, budget_evals, seed=0):
    from .test_relaxation import MIXED_PROMPT, mixed_space

    model = engine.model
    model.meter = CostMeter()
    space = mixed_space(model, tmp_path)
    problem = Problem(model=model, space=space, objective=ClipLoss(engine.scorer, MIXED_PROMPT),
                      sampling=SamplingConfig((0,), steps=4, guidance=7.5), seed=seed)
    model.meter.budget = budget_evals * problem.eval_cost
    return problem


def _multi_token_substitutes(space, choice) -> int:
    """How many slots of ``choice`` use a substitute of several tokens (not the user's own word)."""
    return sum(c != 0 and space.slots[i].tokens[c] > 1 for i, c in enumerate(choice))


@pytest.mark.parametrize("name", ["random", "epo"])
def test_random_and_epo_reach_multi_token_candidates(engine, tmp_path, name):
    problem = _mixed_problem(engine, tmp_path, budget_evals=24)
    make_solver(name).run(problem)
    assert len(problem.evaluated) == 24
    assert sum(_multi_token_substitutes(problem.space, c) > 0 for c in problem.evaluated) >= 5
    used = {(i, c) for choice in problem.evaluated for i, c in enumerate(choice)}
    assert (0, 1) in used or (0, 2) in used  # the multi-token word "lanky" itself is searched


@pytest.mark.parametrize("name", ["gpo", "hybrid"])
def test_gpo_and_hybrid_run_on_a_space_with_mixed_slots(engine, tmp_path, monkeypatch, name):
    """GPO learns the relaxed slots only; its samples, and the hybrid's evolution, cover the
    whole space: held slots and multi-token candidates included."""
    problem = _mixed_problem(engine, tmp_path, budget_evals=40)
    learned, captured = {}, {}
    original_learn, original_run = GradientSolver.learn, EvolutionSolver.run

    def learn(self, problem):
        relaxed = original_learn(self, problem)
        learned["relaxed"] = relaxed
        return relaxed

    def spy(self, problem, initial=()):
        captured["initial"] = list(initial)
        return original_run(self, problem, initial)

    monkeypatch.setattr(GradientSolver, "learn", learn)
    monkeypatch.setattr(EvolutionSolver, "run", spy)
    make_solver(name, iterations=4).run(problem)
    relaxed = learned["relaxed"]
    start = relaxed.prior
    moved = (relaxed.logits.detach() != start)
    assert moved[[1, 4]].any() and not moved[[0, 2, 3]].any()  # only the relaxed slots (red, antonym red) learn
    assert not moved[~relaxed.mask].any()  # multi-token candidates keep their start
    assert len(problem.evaluated) > 10 and problem.meter.used <= problem.meter.budget
    seeds = captured.get("initial") or list(problem.evaluated)
    assert any(_multi_token_substitutes(problem.space, c) for c in seeds)  # reached through the prior
    assert any(c[0] != 0 or c[2] != 0 for c in seeds)  # held slots are sampled too
    (note,) = [h for h in problem.history if h["phase"] == "relaxation"]  # what GPO could not see, and why
    assert note["relaxed_slots"] == 2 and any("carmine: more than one token" in x for x in note["not_relaxed"])
