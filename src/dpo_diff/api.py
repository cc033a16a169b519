"""The Python API: ``load`` a model once, then ``enhance`` or ``attack`` prompts.

Every option is a field of :class:`~dpo_diff.config.RunConfig`; the functions here take a
config, keyword options, or both (keywords win). The CLI is a thin shell over them.
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .checks import check_guidance, check_prompt, parse_kind, parse_seeds
from .config import DEFAULT_EVALUATIONS, DEFAULT_GUIDANCE, RunConfig, resolve_config
from .constraints import MeaningConstraint
from .cost import CostMeter, measure_cost_ratios
from .engine import Engine, load, load_for
from .errors import BudgetError, DpoDiffError
from .estimators import make_estimator, timestep_schedule
from .heldout import evaluate_held_out, world_judge
from .objectives import get_objective
from .outputs import prepare_out_dir
from .problem import Problem, ProgressCallback
from .results import Candidate, OptimizationResult
from .sampling import SamplingConfig
from .solvers import make_solver
from .spaces import LLMConfig, SearchSpace, build_space
from .spaces.vocabulary import resolve_vocabulary
from .task import get_task

__all__ = [
    "DEFAULT_EVALUATIONS", "DEFAULT_GUIDANCE", "Candidate", "Engine", "OptimizationResult", "RunConfig", "attack",
    "check_prompt", "enhance", "load", "optimize", "parse_seeds", "show_space",
]


def optimize(
    task: str,
    prompt: str,
    config: RunConfig | None = None,
    *,
    model: str | Engine | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    llm: LLMConfig | None = None,
    progress: ProgressCallback | None = None,
    on_space: Callable[[SearchSpace], None] | None = None,
    accept_initial: Callable[[float], bool] | None = None,
    **options: Any,
) -> OptimizationResult:
    """Search the prompt space of ``prompt`` for ``task``; see :func:`enhance` and :func:`attack`.

    ``config`` and ``options`` are the run's options (:class:`RunConfig`); ``model`` is a name
    (an option) or a loaded :class:`Engine`. ``llm`` overrides the LLM endpoint of the config.
    ``out`` holding another run's result is refused unless ``overwrite`` (which removes that run's
    files first).

    ``accept_initial``, if given, sees the user prompt's loss first; when it says no, the run
    stops there (``result.filtered``), as the paper's hard-prompt filter does.

    ``eval_seeds`` (default 4; 0 turns it off): after the search, the initial and the best
    prompt are re-rendered on that many seeds disjoint from ``seeds`` (or on the seeds listed)
    and ``result.held_out`` holds their losses; its cost is reported apart from the budget.
    """
    started = time.perf_counter()
    engine = model if isinstance(model, Engine) else None
    if model is not None and engine is None:
        options["model"] = model
    cfg = resolve_config(config, options)
    task_ = get_task(task)
    prompt = check_prompt(prompt, cfg.allow_non_ascii)
    cfg.check(task_.name)
    seed_list, held_out_seeds = cfg.seed_list(), cfg.eval_seed_list()
    space_kind = cfg.space_kind(task_.name)
    parts = parse_kind(space_kind)
    spec = get_objective(cfg.objective)
    grad = make_estimator(cfg.estimator, cfg.k)
    search = make_solver(cfg.solver, estimator=grad, schedule=cfg.schedule, iterations=cfg.iterations,
                         gpo_style=cfg.gpo_style)
    timestep_schedule(cfg.schedule, 1, random.Random(0))  # refuse a bad schedule before loading anything
    out_dir = prepare_out_dir(out, overwrite) if out is not None else None

    if engine is None:
        engine = load_for(cfg)
    elif cfg.checkpoint and not engine.model.checkpointed:
        engine.model.enable_checkpointing()
    guidance = cfg.effective_guidance()
    guidance = engine.default_guidance if guidance is None else guidance
    check_guidance(space_kind, parts, guidance, cfg.guidance_option(getattr(engine.model, "guidance_option", "--guidance")))
    objective = engine.objective(spec.name, prompt, None if spec.engine_scorer else cfg.scorer)
    sampling = _sampling(engine, prompt, seed_list, cfg.steps or engine.default_steps, guidance)
    constraint = None
    if task_.name == "attack" and cfg.min_similarity > 0:
        constraint = MeaningConstraint(prompt, cfg.min_similarity)
    search_space = build_space(prompt, space_kind, cfg.source, cfg.nplib_size, llm or cfg.llm(),
                               token_ids=engine.model.word_token_ids,
                               vocabulary=resolve_vocabulary(cfg.vocabulary, engine.name), meaning=constraint)
    if on_space is not None:
        on_space(search_space)
    decode_passes, score_passes, _ = measure_cost_ratios(engine.model, objective.scorer)
    meter = CostMeter(None, decode_passes=decode_passes, score_passes=score_passes,
                      recompute=engine.model.checkpointed)
    eval_cost = sampling.passes() + meter.image_cost(len(seed_list))
    budget = cfg.budget if cfg.budget is not None else DEFAULT_EVALUATIONS * sampling.passes()
    if budget < eval_cost:
        raise BudgetError(
            f"--budget {budget} cannot pay for one evaluation ({eval_cost:.4g} denoiser-pass equivalents: "
            f"{len(seed_list)} seed(s) x {sampling.timesteps} denoiser steps{' x 2 for guidance' if sampling.guided else ''}"
            f", plus decoding and scoring {meter.image_cost(1):.3g} per image)"
        )
    if search_space.is_empty:
        constraint = None
    meter.budget = budget
    problem = Problem(
        model=engine.metered(meter),
        space=search_space,
        objective=objective,
        sampling=sampling,
        maximize=not task_.minimizes(objective.lower_is_better),
        constraint=constraint,
        seed=cfg.seed,
        eval_batch_size=cfg.eval_batch_size,
        progress=progress,
    )
    filtered, interrupted, message = _search(problem, search, accept_initial, space_kind, cfg.source)
    result = _result(task_.name, prompt, engine, search, grad, problem, budget, started, interrupted, message)
    result.filtered = filtered
    if constraint is not None and result.best.prompt != prompt:
        result.meaning = _meaning(constraint, result.best.prompt)
    judge = world_judge(engine.name, prompt)
    if judge is not None and result.initial_images is not None and result.best_images is not None:
        result.initial_seed_faithfulness = judge(result.initial_images)
        result.best_seed_faithfulness = judge(result.best_images)
        result.initial_faithfulness = _mean(result.initial_seed_faithfulness)
        result.best_faithfulness = _mean(result.best_seed_faithfulness)
    if held_out_seeds and not interrupted and result.initial.loss is not None:
        texts = {"initial": (result.initial.prompt, result.initial.negative_prompt),
                 "best": (result.best.prompt, result.best.negative_prompt)}
        try:
            result.held_out = evaluate_held_out(problem, texts, held_out_seeds, judge)
        except KeyboardInterrupt:
            result.interrupted = True
            result.message = "interrupted during the held-out evaluation: the result has no held-out figures"
    if out_dir is not None and result.initial.loss is not None:
        result.save(out_dir)
    return result


def _sampling(engine: Engine, prompt: str, seeds: list[int], steps: int, guidance: float) -> SamplingConfig:
    gen = engine.model
    n_tokens = len(gen.word_token_ids(prompt))
    if n_tokens > gen.max_length - 2:
        warnings.warn(
            f"the prompt is {n_tokens} tokens; the text encoder reads the first {gen.max_length - 2}, "
            "the rest is cut (and not searched)",
            stacklevel=3,
        )
    max_steps = int(gen.scheduler_config.get("num_train_timesteps", 1000))
    if steps > max_steps:
        raise DpoDiffError(f"--steps {steps} is more than the scheduler's {max_steps} training timesteps")
    return SamplingConfig(tuple(seeds), steps, guidance, timesteps=gen.timestep_count(steps))


def _search(problem: Problem, search, accept_initial, space_kind: str, source: str) -> tuple[bool, bool, str]:
    """Score the user's prompt, then search: (filtered, interrupted, message)."""
    space = problem.space
    initial = space.initial_choice
    try:
        problem.evaluate([initial], keep_images=[initial])
        if accept_initial is not None and not accept_initial(problem.evaluated[initial]):
            return True, False, f"filtered out: the initial loss {problem.evaluated[initial]:.4f} does not pass the filter"
        if space.is_empty:
            left_out = (f"; {len(space.dropped)} candidates were left out, each with its reason in the space's "
                        "'dropped'") if space.dropped else ""
            return False, False, (f"no word of the prompt has substitutes in the '{space_kind}' space "
                                  f"(source: {source}{left_out}); the prompt is returned unchanged")
        search.run(problem)
        if problem.space_exhausted:
            return False, False, f"the whole space ({space.size} choices) was evaluated or refused by the constraint"
        if problem.stalls >= 50:
            return False, False, "stopped early: the meaning constraint refused every new candidate proposed"
        return False, False, ""
    except KeyboardInterrupt:
        return False, True, "interrupted: the result holds the best candidate found so far"


def _meaning(constraint: MeaningConstraint, prompt: str) -> dict:
    verdict = constraint.judge(prompt)
    sense = verdict.get("sense")
    return {  # JSON-safe: a sense score of +-inf (inflection only / no sense) as text
        "similarity": round(float(verdict["similarity"]), 4),
        "sense": sense if sense is None or abs(sense) != float("inf") else str(sense),
        "accepted": bool(verdict["accepted"]),
        "sense_mode": constraint.sense_mode if constraint.sense_rule else None,
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _result(task, prompt, engine, search, grad, problem: Problem, budget, started, interrupted, message):
    space = problem.space
    initial = space.initial_choice
    best = problem.best_choice if problem.best_choice is not None else initial
    return OptimizationResult(
        task=task,
        prompt=prompt,
        model=engine.name,
        solver=search.name,
        estimator=grad.name,
        space=space,
        seeds=list(problem.sampling.seeds),
        steps=problem.sampling.steps,
        guidance=problem.sampling.guidance,
        seed=problem.seed,
        budget=budget,
        cost=problem.meter.used,
        cost_breakdown=problem.meter.breakdown(),
        initial=Candidate(*space.render(initial), problem.evaluated.get(initial)),
        best=Candidate(*space.render(best), problem.best_loss),
        history=problem.history,
        seconds=time.perf_counter() - started,
        interrupted=interrupted,
        message=message,
        objective=problem.objective.name,
        lower_is_better=problem.objective.lower_is_better,
        initial_images=problem.images.get(initial),
        best_images=problem.best_images,
        initial_seed_losses=problem.image_losses.get(initial),
        best_seed_losses=problem.best_image_losses,
    )


def enhance(prompt: str, config: RunConfig | None = None, **options: Any) -> OptimizationResult:
    """Find a prompt / negative prompt that makes the model draw ``prompt`` better (lower CLIP loss).

    Defaults: the ``antonym+nplib`` negative-prompt space, the hybrid solver, the shortcut
    gradient, 40 evaluations' worth of denoiser passes. Options as in :class:`RunConfig`.
    """
    return optimize("enhance", prompt, config, **options)


def attack(prompt: str, config: RunConfig | None = None, **options: Any) -> OptimizationResult:
    """Find a meaning-preserving rewrite of ``prompt`` (synonyms) that makes the model fail.

    Candidates must keep sentence-embedding cosine >= ``min_similarity`` to the prompt.
    """
    return optimize("attack", prompt, config, **options)


def show_space(
    prompt: str,
    kind: str = "synonym",
    model: str | Engine | None = None,
    source: str = "wordnet",
    nplib_size: int = 4,
    llm: LLMConfig | None = None,
    allow_non_ascii: bool = False,
    vocabulary: str = "auto",
    min_similarity: float = 0.8,
) -> SearchSpace:
    """The search space a run would use (token counts on the model's tokenizer, else CLIP's).

    Synonym candidates are those an attack searches: the ones its meaning check accepts alone
    (``min_similarity`` as in :func:`attack`; 0 turns the check off), in the model's vocabulary
    (``vocabulary`` as in :class:`RunConfig`; ``auto`` finds none without a ``model``).
    """
    prompt = check_prompt(prompt, allow_non_ascii)
    name = None
    if model is not None:
        engine = model if isinstance(model, Engine) else load(model)
        token_ids, name = engine.model.word_token_ids, engine.name
    else:
        from .models import clip_tokenizer

        tok = clip_tokenizer()
        token_ids = lambda text: tok(text, add_special_tokens=False).input_ids  # noqa: E731
    meaning = MeaningConstraint(prompt, min_similarity) if min_similarity > 0 and "synonym" in parse_kind(kind) else None
    return build_space(prompt, kind, source, nplib_size, llm, token_ids=token_ids,
                       vocabulary=resolve_vocabulary(vocabulary, name), meaning=meaning)
