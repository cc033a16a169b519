"""One optimization problem: a space, a model, an objective, seeds and a budget.

:class:`Problem` is what every solver works on. It evaluates discrete candidates in
batches (each candidate once), enforces the attack's meaning constraint, keeps the best
candidate and its images, records the history, and stops everyone at the budget.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .cost import CostMeter
from .objectives import Objective
from .pipelines.stable_diffusion import StableDiffusionModel
from .sampling import SamplingConfig
from .spaces import Choice, SearchSpace

ProgressCallback = Callable[["Problem"], None]


@dataclass
class Problem:
    model: StableDiffusionModel
    space: SearchSpace
    objective: Objective
    sampling: SamplingConfig
    maximize: bool = False  # push the objective up (Task.minimizes says which way: attack on CLIP, enhance on PickScore)
    constraint: Callable[[str], bool] | None = None  # on the rendered positive prompt
    seed: int = 0
    eval_batch_size: int = 8
    progress: ProgressCallback | None = None

    evaluated: dict[Choice, float] = field(default_factory=dict)
    rejected: set[Choice] = field(default_factory=set)
    history: list[dict] = field(default_factory=list)
    best_choice: Choice | None = None
    best_loss: float | None = None
    best_images: Tensor | None = None
    best_image_losses: list[float] | None = None  # the best candidate's loss on each seed
    images: dict[Choice, Tensor] = field(default_factory=dict)
    image_losses: dict[Choice, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.started = time.perf_counter()
        self.stalls = 0

    # -------------------------------------------------------------- budget
    @property
    def meter(self) -> CostMeter:
        return self.model.meter

    @property
    def eval_cost(self) -> float:
        """denoiser-pass equivalents to evaluate one candidate over all seeds (sampling, decoding, scoring)."""
        return self.sampling.passes() + self.meter.image_cost(len(self.sampling.seeds))

    @property
    def space_exhausted(self) -> bool:
        return len(self.evaluated) + len(self.rejected) >= self.space.size

    @property
    def done(self) -> bool:
        """Budget spent, space spent, or 50 proposals in a row all refused by the constraint."""
        return not self.meter.can_afford(self.eval_cost) or self.space_exhausted or self.stalls >= 50

    def fitness(self, loss: float) -> float:
        """Lower is better, for either task."""
        return -loss if self.maximize else loss

    # --------------------------------------------------------- candidates
    def random_choice(self) -> Choice:
        return tuple(self.rng.randrange(k) for k in self.space.sizes)

    def is_new(self, choice: Choice) -> bool:
        return choice not in self.evaluated and choice not in self.rejected

    def is_valid(self, choice: Choice) -> bool:
        if self.constraint is None or choice == self.space.initial_choice:
            return True
        ok = self.constraint(self.space.render(choice)[0])
        if not ok:
            self.rejected.add(choice)
        return ok

    def top(self, n: int) -> list[Choice]:
        ranked = sorted(self.evaluated.items(), key=lambda kv: self.fitness(kv[1]))
        return [c for c, _ in ranked[:n]]

    @torch.no_grad()
    def _losses(self, choices: Sequence[Choice]) -> tuple[Tensor, Tensor]:
        """Per candidate and seed: the losses (C, S) and the images (C, S, 3, H, W)."""
        texts = [self.space.render(c) for c in choices]
        cond = self.model.encode([p for p, _ in texts])
        uncond = self.model.encode([n for _, n in texts]) if self.sampling.guided else None
        images = self.model.generate(cond, uncond, self.sampling.seeds, self.sampling.steps, self.sampling.guidance)
        per_image = self.objective(images).view(len(choices), len(self.sampling.seeds))
        self.meter.add_score(images.shape[0])
        return per_image.detach().cpu(), images.view(len(choices), len(self.sampling.seeds), *images.shape[1:])

    def evaluate(self, choices: Sequence[Choice], keep_images: Sequence[Choice] = ()) -> list[tuple[Choice, float]]:
        """Evaluate the new, valid ``choices`` the budget pays for, in batches. Returns (choice, loss)."""
        todo = list(dict.fromkeys(c for c in choices if self.is_new(c)))
        todo = [c for c in todo if self.is_valid(c)]
        results: list[tuple[Choice, float]] = []
        for start in range(0, len(todo), self.eval_batch_size):
            left = self.meter.left
            affordable = len(todo) if left == float("inf") else int((left + 1e-9) // self.eval_cost)
            batch = todo[start : start + min(self.eval_batch_size, affordable)]
            if not batch:
                break
            per_seed, images = self._losses(batch)
            losses = per_seed.mean(dim=1).tolist()
            for c, loss, seed_losses, img in zip(batch, losses, per_seed.tolist(), images):
                self.evaluated[c] = loss
                results.append((c, loss))
                if c in keep_images:
                    self.images[c], self.image_losses[c] = img.cpu(), seed_losses
                if self.best_loss is None or self.fitness(loss) < self.fitness(self.best_loss):
                    self.best_choice, self.best_loss, self.best_images = c, loss, img.cpu()
                    self.best_image_losses = seed_losses
            self.log("evaluate", batch_loss=min(losses, key=self.fitness), candidates=len(batch))
        self.stalls = 0 if results else self.stalls + 1
        return results

    def log(self, phase: str, **values) -> None:
        entry = {
            "step": len(self.history),
            "phase": phase,
            "cost": round(self.meter.used, 3),
            "best_loss": self.best_loss,
            "seconds": round(time.perf_counter() - self.started, 3),
            **values,
        }
        self.history.append(entry)
        if self.progress is not None:
            self.progress(self)
