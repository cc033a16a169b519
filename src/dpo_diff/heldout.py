"""Held-out evaluation: the initial and the best prompt re-rendered on seeds the search never saw.

A search picks the candidate whose images scored best *on its own seeds*; part of that gain is
selection on noise. Every run therefore re-renders the initial and the best prompt on
``eval_seeds`` (default: 4 seeds disjoint from the search seeds) and reports those losses
beside the search's. On the bundled world, the pixel judge's faithfulness of those images is
reported too. The cost of this re-evaluation is counted apart from the search budget.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .cost import CostMeter


def is_world(model_name: str) -> bool:
    """The bundled world, or a folder ``dpo-diff world train`` wrote (its training.json and scorer/)."""
    if model_name == "world":
        return True
    folder = Path(model_name).expanduser()
    return (folder / "training.json").is_file() and (folder / "scorer").is_dir()


def world_judge(model_name: str, prompt: str) -> Callable[[Tensor], list[float]] | None:
    """Per-image faithfulness for world captions on the bundled world model, else None."""
    if not is_world(model_name):
        return None
    from .world.judge import faithfulness
    from .world.parse import parse_prompt

    scene = parse_prompt(prompt)
    if scene is None:
        return None
    return lambda images: [float(faithfulness(im.permute(1, 2, 0).cpu().numpy(), scene)) for im in images]


@dataclass
class HeldOutCandidate:
    loss: float
    losses: list[float]  # per held-out seed
    faithfulness: float | None = None

    def to_dict(self) -> dict:
        d = {"loss": self.loss, "losses": [round(x, 6) for x in self.losses]}
        if self.faithfulness is not None:
            d["faithfulness"] = self.faithfulness
        return d


@dataclass
class HeldOut:
    """The initial and best prompt's losses (and judged faithfulness) on the held-out seeds."""

    seeds: list[int]
    initial: HeldOutCandidate
    best: HeldOutCandidate
    cost: float = 0.0

    def to_dict(self) -> dict:
        return {
            "seeds": self.seeds,
            "initial": self.initial.to_dict(),
            "best": self.best.to_dict(),
            "cost": round(self.cost, 3),
        }


@torch.no_grad()
def evaluate_held_out(problem, texts: dict[str, tuple[str, str]], seeds: Sequence[int], judge=None) -> HeldOut:
    """Render and score each (prompt, negative prompt) of ``texts`` ("initial", "best") on ``seeds``.

    Uses the problem's model, objective, steps and guidance; spends on a meter of its own.
    """
    sampling, search_meter = problem.sampling, problem.model.meter
    meter = CostMeter(None, decode_passes=search_meter.decode_passes, score_passes=search_meter.score_passes)
    model = problem.model.with_meter(meter)
    names = list(dict.fromkeys(texts))
    unique = list(dict.fromkeys(texts[n] for n in names))
    cond = model.encode([p for p, _ in unique])
    uncond = model.encode([n for _, n in unique]) if sampling.guided else None
    images = model.generate(cond, uncond, list(seeds), sampling.steps, sampling.guidance)
    losses = problem.objective(images).view(len(unique), len(seeds))
    meter.add_score(images.shape[0])
    images = images.view(len(unique), len(seeds), *images.shape[1:]).cpu()
    out: dict[str, HeldOutCandidate] = {}
    for name in names:
        i = unique.index(texts[name])
        per_seed = [float(x) for x in losses[i].tolist()]
        faith = judge(images[i]) if judge is not None else None
        out[name] = HeldOutCandidate(statistics.fmean(per_seed), per_seed, statistics.fmean(faith) if faith else None)
    return HeldOut(list(seeds), out["initial"], out["best"], meter.used)
