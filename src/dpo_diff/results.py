"""What a run returns: the initial and the best candidate, held-out figures, cost, history."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from .heldout import HeldOut
from .outputs import save_result
from .spaces import SearchSpace
from .task import get_task

COST_UNIT = (
    "denoiser-pass equivalents (a UNet or transformer call on one latent): a guided step is 2 passes, a "
    "backward 2 per forward; "
    "VAE decodes and scorer calls converted by their FLOPs (cost_breakdown)"
)


@dataclass
class Candidate:
    prompt: str
    negative_prompt: str
    loss: float | None

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "loss": self.loss}


@dataclass
class OptimizationResult:
    """What a run found, what it cost, and how it got there.

    ``loss`` values are the objective's (``objective``; ``lower_is_better`` says its direction).
    """

    task: str
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
    objective: str = "clip"
    lower_is_better: bool = True
    initial_images: Tensor | None = field(default=None, repr=False)
    best_images: Tensor | None = field(default=None, repr=False)
    # per search seed, for the pictures' labels: the loss, and the world judge's faithfulness
    initial_seed_losses: list[float] | None = field(default=None, repr=False)
    best_seed_losses: list[float] | None = field(default=None, repr=False)
    initial_seed_faithfulness: list[float] | None = field(default=None, repr=False)
    best_seed_faithfulness: list[float] | None = field(default=None, repr=False)

    @property
    def improvement(self) -> float:
        """How much the loss moved in the task's direction (>= 0)."""
        if self.initial.loss is None or self.best.loss is None:
            return 0.0
        return get_task(self.task).change(self.initial.loss, self.best.loss, self.lower_is_better)

    @property
    def held_out_improvement(self) -> float | None:
        """How much the loss moved in the task's direction on the held-out seeds (None: not evaluated)."""
        if self.held_out is None:
            return None
        held = self.held_out
        return get_task(self.task).change(held.initial.loss, held.best.loss, self.lower_is_better)

    @property
    def judged(self) -> tuple[float, float] | None:
        """The world judge's faithfulness (initial, best): on the held-out seeds when evaluated there."""
        held = self.held_out
        if held is not None and held.initial.faithfulness is not None:
            return held.initial.faithfulness, held.best.faithfulness
        if self.initial_faithfulness is not None:
            return self.initial_faithfulness, self.best_faithfulness
        return None

    @property
    def flagged(self) -> bool:
        """The judge reads the enhanced prompt's pictures as less faithful: not an improvement."""
        return self.judged is not None and get_task(self.task).flagged(*self.judged)

    def to_dict(self, timings: bool = True) -> dict:
        history = self.history if timings else [{k: v for k, v in h.items() if k != "seconds"} for h in self.history]
        data = {
            "task": self.task,
            "prompt": self.prompt,
            "model": self.model,
            "solver": self.solver,
            "estimator": self.estimator,
            "objective": {"name": self.objective, "lower_is_better": self.lower_is_better},
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
            "cost_unit": COST_UNIT,
            "cost_breakdown": self.cost_breakdown,
            "space": self.space.to_dict(),
            "history": history,
            "interrupted": self.interrupted,
            "filtered": self.filtered,
            "flagged": self.flagged,
            "message": self.message,
        }
        if self.initial_faithfulness is not None:
            data["initial"]["faithfulness"] = self.initial_faithfulness
            data["best"]["faithfulness"] = self.best_faithfulness
        if timings:
            data["seconds"] = round(self.seconds, 3)
        return data

    def save(self, out: str | Path) -> Path:
        """Write ``result.json`` and the images into ``out`` (replacing a result already there)."""
        return save_result(self, out)


def lower_is_better(data: dict) -> bool:
    """The direction of a stored result's values (results written before objectives existed: CLIP's)."""
    objective = data.get("objective")
    return bool(objective.get("lower_is_better", True)) if isinstance(objective, dict) else True
