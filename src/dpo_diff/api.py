"""The Python API: ``load`` a model once, then ``enhance`` or ``attack`` prompts.

The CLI is a thin shell over these functions.
"""

from __future__ import annotations

import logging
import random
import time
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from .constraints import MeaningConstraint
from .cost import CostMeter, measure_cost_ratios
from .errors import BudgetError, DpoDiffError, ModelNotFoundError
from .estimators import make_estimator, timestep_schedule
from .heldout import HeldOut, evaluate_held_out, resolve_eval_seeds, world_judge
from .models import (
    DEFAULT_SCORER,
    PRESETS,
    bundled_models,
    default_model,
    load_pipeline,
    load_scorer_parts,
    preset_defaults,
    resolve_device,
)
from .objectives import ClipLoss, ClipScorer
from .outputs import prepare_out_dir, save_result
from .pipelines import StableDiffusionModel, make_model
from .problem import Problem, ProgressCallback
from .sampling import SamplingConfig
from .solvers import make_solver
from .spaces import LLMConfig, SearchSpace, build_space, parse_kind

log = logging.getLogger(__name__)

Task = Literal["enhance", "attack"]
DEFAULT_SPACE = {"enhance": "antonym+nplib", "attack": "synonym"}
DEFAULT_EVALUATIONS = 40  # default budget, in evaluations of one candidate
DEFAULT_GUIDANCE = 7.5  # unless the model's preset asks for another (few-step models: 0)


@dataclass
class Engine:
    """A loaded generator and scorer; load once, optimize many prompts."""

    name: str
    model: StableDiffusionModel
    scorer: ClipScorer
    default_steps: int
    default_guidance: float = DEFAULT_GUIDANCE


def load(
    model: str | None = None,
    scorer: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Engine:
    """Load a Stable Diffusion or SDXL pipeline (preset, bundled model, Hub id or folder) and its CLIP scorer.

    ``model`` defaults to the bundled ``world`` when it is installed, else the ``tiny`` preset.
    The scorer defaults to the preset's own for presets and to ``openai/clip-vit-base-patch32``
    otherwise.
    """
    model = model or default_model()
    dev = resolve_device(device)
    if model in bundled_models() and dtype is None and dev.type == "cpu":
        dtype = torch.float32  # shipped as fp16 safetensors; computed in fp32 on a CPU
    pipe = load_pipeline(model, dev, dtype)
    generator = make_model(pipe, model)
    own_scorer = model in PRESETS or model in bundled_models()
    scorer_name = scorer or (model if own_scorer else DEFAULT_SCORER)
    clip, tokenizer, pre = load_scorer_parts(scorer_name, dev)
    clip_scorer = ClipScorer(clip, tokenizer, pre["image_size"], pre["mean"], pre["std"]).to(dev)
    defaults = preset_defaults(model)
    steps = defaults.get("steps", 20 if own_scorer else 50)
    return Engine(model, generator, clip_scorer, steps, defaults.get("guidance", DEFAULT_GUIDANCE))


@dataclass
class Candidate:
    prompt: str
    negative_prompt: str
    loss: float | None

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "loss": self.loss}


@dataclass
class OptimizationResult:
    """What a run found, what it cost, and how it got there."""

    task: Task
    prompt: str
    model: str
    solver: str
    estimator: str
    space: SearchSpace
    seeds: list[int]
    steps: int
    guidance: float
    seed: int
    budget: float
    cost: float
    initial: Candidate
    best: Candidate
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    filtered: bool = False
    message: str = ""
    held_out: HeldOut | None = None
    meaning: dict | None = None  # attack: the meaning check's judgement of the best prompt
    cost_breakdown: dict = field(default_factory=dict)
    initial_faithfulness: float | None = None  # the world's judge on the search seeds' images
    best_faithfulness: float | None = None
    initial_images: Tensor | None = field(default=None, repr=False)
    best_images: Tensor | None = field(default=None, repr=False)

    @property
    def improvement(self) -> float:
        """How much the loss moved in the task's direction (>= 0)."""
        if self.initial.loss is None or self.best.loss is None:
            return 0.0
        delta = self.initial.loss - self.best.loss
        return delta if self.task == "enhance" else -delta

    @property
    def held_out_improvement(self) -> float | None:
        """How much the loss moved in the task's direction on the held-out seeds (None: not evaluated)."""
        return None if self.held_out is None else self.held_out.change(self.task == "attack")

    def to_dict(self, timings: bool = True) -> dict:
        history = self.history if timings else [{k: v for k, v in h.items() if k != "seconds"} for h in self.history]
        data = {
            "task": self.task,
            "prompt": self.prompt,
            "model": self.model,
            "solver": self.solver,
            "estimator": self.estimator,
            "seeds": self.seeds,
            "seed": self.seed,
            "steps": self.steps,
            "guidance": self.guidance,
            "initial": self.initial.to_dict(),
            "best": self.best.to_dict(),
            "held_out": self.held_out.to_dict() if self.held_out is not None else None,
            "meaning": self.meaning,
            "cost": round(self.cost, 3),
            "budget": self.budget,
            "cost_unit": (
                "UNet-pass equivalents: a guided step is 2 passes, a backward 2 per forward; "
                "VAE decodes and scorer calls converted by their FLOPs (cost_breakdown)"
            ),
            "cost_breakdown": self.cost_breakdown,
            "space": self.space.to_dict(),
            "history": history,
            "interrupted": self.interrupted,
            "filtered": self.filtered,
            "message": self.message,
        }
        if self.initial_faithfulness is not None:
            data["initial"]["faithfulness"] = self.initial_faithfulness
            data["best"]["faithfulness"] = self.best_faithfulness
        if timings:
            data["seconds"] = round(self.seconds, 3)
        return data

    def save(self, out: str | Path) -> Path:
        return save_result(self, out)


def check_prompt(prompt: str, allow_non_ascii: bool = False) -> str:
    """The prompt, stripped, or a one-line refusal."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise DpoDiffError("the prompt is empty: give the text you want an image of")
    prompt = " ".join(prompt.split())
    bad = [c for c in prompt if unicodedata.category(c).startswith("C")]
    if bad:
        raise DpoDiffError(f"the prompt contains a control character ({bad[0]!r})")
    if not allow_non_ascii:
        odd = next((c for c in prompt if not c.isascii()), None)
        if odd is not None:
            raise DpoDiffError(
                f"the prompt contains non-ASCII text ({odd!r}): search spaces are English; "
                "rewrite it, or pass --allow-non-ascii to keep such words fixed"
            )
    if not any(c.isalpha() for c in prompt):
        raise DpoDiffError("the prompt has no words to optimize")
    return prompt


def parse_seeds(seeds: int | str | Sequence[int]) -> list[int]:
    """``3`` -> [0, 1, 2]; ``"4,7"`` -> [4, 7]; a list as it is."""
    try:
        if isinstance(seeds, str):
            values = [int(s) for s in seeds.split(",") if s.strip()]
            if len(values) == 1 and "," not in seeds:
                values = list(range(values[0]))
        elif isinstance(seeds, int):
            values = list(range(seeds))
        else:
            values = [int(s) for s in seeds]
    except ValueError:
        raise DpoDiffError(f"--seeds '{seeds}': give a count (2) or a list (0,7)") from None
    if not values or any(not 0 <= v < 2**63 for v in values):
        raise DpoDiffError(f"--seeds '{seeds}': need at least one seed, each in [0, 2^63)")
    if len(values) > 1000:
        raise DpoDiffError(f"--seeds '{seeds}': {len(values)} seeds is more than the 1000 a run takes")
    return list(dict.fromkeys(values))


def optimize(
    task: Task,
    prompt: str,
    *,
    model: str | Engine | None = None,
    space: str | None = None,
    solver: str = "hybrid",
    budget: int | None = None,
    seeds: int | str | Sequence[int] = 1,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int = 0,
    source: str = "wordnet",
    estimator: str = "shortcut",
    k: int = 1,
    schedule: str = "step-15-2",
    iterations: int = 20,
    gpo_style: str = "authors",
    min_similarity: float = 0.8,
    nplib_size: int = 4,
    llm: LLMConfig | None = None,
    eval_batch_size: int = 8,
    eval_seeds: int | str | Sequence[int] | None = None,
    out: str | Path | None = None,
    scorer: str | None = None,
    device: str | None = None,
    allow_non_ascii: bool = False,
    progress: ProgressCallback | None = None,
    on_space: Callable[[SearchSpace], None] | None = None,
    accept_initial: Callable[[float], bool] | None = None,
) -> OptimizationResult:
    """Search the prompt space of ``prompt`` for ``task``; see :func:`enhance` and :func:`attack`.

    ``accept_initial``, if given, sees the user prompt's loss first; when it says no, the run
    stops there (``result.filtered``), as the paper's hard-prompt filter does.

    ``eval_seeds`` (default 4; 0 turns it off): after the search, the initial and the best
    prompt are re-rendered on that many seeds disjoint from ``seeds`` (or on the seeds listed)
    and ``result.held_out`` holds their losses; its cost is reported apart from the budget.
    """
    started = time.perf_counter()
    if task not in DEFAULT_SPACE:
        raise DpoDiffError(f"unknown task '{task}': use enhance or attack")
    prompt = check_prompt(prompt, allow_non_ascii)
    if budget is not None and budget <= 0:
        raise BudgetError(f"--budget must be a positive number of UNet passes, not {budget}")
    if steps is not None and steps < 1:
        raise DpoDiffError(f"--steps must be at least 1, not {steps}")
    if k < 1:
        raise DpoDiffError(f"--k must be at least 1, not {k}")
    seed_list = parse_seeds(seeds)
    held_out_seeds = resolve_eval_seeds(eval_seeds, seed_list)
    space_kind = space or DEFAULT_SPACE[task]
    parts = parse_kind(space_kind)
    if task == "attack" and parts != ("synonym",):
        raise DpoDiffError("an attack keeps the prompt's meaning: use --space synonym")
    grad = make_estimator(estimator, k)
    search = make_solver(solver, estimator=grad, schedule=schedule, iterations=iterations, gpo_style=gpo_style)
    timestep_schedule(schedule, 1, random.Random(0))  # refuse a bad schedule before loading anything
    if guidance is not None:
        _check_guidance(space_kind, parts, guidance)  # before loading anything
    out_dir = prepare_out_dir(out) if out is not None else None

    engine = model if isinstance(model, Engine) else load(model, scorer=scorer, device=device)
    if guidance is None:
        guidance = engine.default_guidance
        _check_guidance(space_kind, parts, guidance)
    gen = engine.model
    n_tokens = len(gen.word_token_ids(prompt))
    if n_tokens > gen.max_length - 2:
        warnings.warn(
            f"the prompt is {n_tokens} tokens; the text encoder reads the first {gen.max_length - 2}, "
            "the rest is cut (and not searched)",
            stacklevel=2,
        )
    n_steps = steps or engine.default_steps
    max_steps = int(gen.scheduler_config.get("num_train_timesteps", 1000))
    if n_steps > max_steps:
        raise DpoDiffError(f"--steps {n_steps} is more than the scheduler's {max_steps} training timesteps")
    sampling = SamplingConfig(tuple(seed_list), n_steps, guidance, timesteps=gen.timestep_count(n_steps))
    search_space = build_space(prompt, space_kind, source, nplib_size, llm, token_ids=gen.word_token_ids)
    if on_space is not None:
        on_space(search_space)
    decode_passes, score_passes, _ = measure_cost_ratios(gen, engine.scorer)
    meter = CostMeter(None, decode_passes=decode_passes, score_passes=score_passes)
    eval_cost = sampling.passes() + meter.image_cost(len(seed_list))
    budget = budget if budget is not None else DEFAULT_EVALUATIONS * sampling.passes()
    if budget < eval_cost:
        raise BudgetError(
            f"--budget {budget} cannot pay for one evaluation ({eval_cost:.4g} UNet-pass equivalents: "
            f"{len(seed_list)} seed(s) x {sampling.timesteps} UNet steps{' x 2 for guidance' if sampling.guided else ''}"
            f", plus decoding and scoring {meter.image_cost(1):.3g} per image)"
        )
    constraint = None
    if task == "attack" and min_similarity > 0 and not search_space.is_empty:
        constraint = MeaningConstraint(prompt, min_similarity)
    meter.budget = budget
    gen.meter = meter
    problem = Problem(
        model=gen,
        space=search_space,
        objective=ClipLoss(engine.scorer, prompt),
        sampling=sampling,
        maximize=task == "attack",
        constraint=constraint,
        seed=seed,
        eval_batch_size=eval_batch_size,
        progress=progress,
    )
    initial = search_space.initial_choice
    interrupted = filtered = False
    message = ""
    try:
        problem.evaluate([initial], keep_images=[initial])
        if accept_initial is not None and not accept_initial(problem.evaluated[initial]):
            filtered = True
            message = f"filtered out: the initial loss {problem.evaluated[initial]:.4f} does not pass the filter"
        elif search_space.is_empty:
            message = (
                f"no word of the prompt has substitutes in the '{space_kind}' space "
                f"(source: {source}); the prompt is returned unchanged"
            )
        else:
            search.run(problem)
            if problem.space_exhausted:
                message = f"the whole space ({search_space.size} choices) was evaluated or refused by the constraint"
            elif problem.stalls >= 50:
                message = "stopped early: the meaning constraint refused every new candidate proposed"
    except KeyboardInterrupt:
        interrupted = True
        message = "interrupted: the result holds the best candidate found so far"
    result = _result(task, prompt, engine, search, grad, problem, budget, started, interrupted, message)
    result.filtered = filtered
    if constraint is not None and result.best.prompt != prompt:
        verdict = constraint.judge(result.best.prompt)
        sense = verdict.get("sense")
        result.meaning = {  # JSON-safe: a sense score of +-inf (inflection only / no sense) as text
            "similarity": round(float(verdict["similarity"]), 4),
            "sense": sense if sense is None or abs(sense) != float("inf") else str(sense),
            "accepted": bool(verdict["accepted"]),
        }
    judge = world_judge(engine.name, prompt)
    if judge is not None and result.initial_images is not None and result.best_images is not None:
        result.initial_faithfulness = _mean(judge(result.initial_images))
        result.best_faithfulness = _mean(judge(result.best_images))
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


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _check_guidance(space_kind: str, parts: tuple[str, ...], guidance: float) -> None:
    """Negative-prompt spaces need classifier-free guidance (few-step models run without it)."""
    if any(p in parts for p in ("antonym", "nplib")) and guidance <= 1.0:
        raise DpoDiffError(
            f"the '{space_kind}' space optimizes the negative prompt, which only acts with "
            f"classifier-free guidance (guidance {guidance:g} here): use --guidance above 1 or --space synonym"
        )


def _result(task, prompt, engine, search, grad, problem: Problem, budget, started, interrupted, message):
    space = problem.space
    initial = space.initial_choice
    init_loss = problem.evaluated.get(initial)
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
        initial=Candidate(*space.render(initial), init_loss),
        best=Candidate(*space.render(best), problem.best_loss),
        history=problem.history,
        seconds=time.perf_counter() - started,
        interrupted=interrupted,
        message=message,
        initial_images=problem.images.get(initial),
        best_images=problem.best_images,
    )


def enhance(prompt: str, **options) -> OptimizationResult:
    """Find a prompt / negative prompt that makes the model draw ``prompt`` better (lower CLIP loss).

    Defaults: the ``antonym+nplib`` negative-prompt space, the hybrid solver, the shortcut
    gradient, 40 evaluations' worth of UNet passes. Options as in :func:`optimize`.
    """
    return optimize("enhance", prompt, **options)


def attack(prompt: str, **options) -> OptimizationResult:
    """Find a meaning-preserving rewrite of ``prompt`` (synonyms) that makes the model fail.

    Candidates must keep sentence-embedding cosine >= ``min_similarity`` to the prompt.
    """
    return optimize("attack", prompt, **options)


def show_space(
    prompt: str,
    kind: str = "synonym",
    model: str | Engine | None = None,
    source: str = "wordnet",
    nplib_size: int = 4,
    llm: LLMConfig | None = None,
    allow_non_ascii: bool = False,
) -> SearchSpace:
    """The search space a run would use (token counts on the model's tokenizer, else CLIP's)."""
    prompt = check_prompt(prompt, allow_non_ascii)
    token_ids = None
    if model is not None:
        token_ids = (model if isinstance(model, Engine) else load(model)).model.word_token_ids
    else:
        from .models import clip_tokenizer

        tok = clip_tokenizer()
        token_ids = lambda text: tok(text, add_special_tokens=False).input_ids  # noqa: E731
    return build_space(prompt, kind, source, nplib_size, llm, token_ids=token_ids)
