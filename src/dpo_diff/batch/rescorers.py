"""Scoring stored images again with another objective: ``(images, prompt) -> values``.

- ``clip`` / ``clip:ID_OR_PATH``, ``pickscore`` / ``pickscore:ID_OR_PATH``: any objective of the
  registry (:mod:`dpo_diff.objectives`), the same code that optimizes, here without gradients.
- ``imagereward``: ImageReward's reward (higher is better) through its own package, which
  gives no differentiable path here; needs ``pip install 'dpo-diff[scorers]'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DpoDiffError
from ..objectives import OBJECTIVES, get_objective

Rescorer = Callable[[list, str], list[float]]


@dataclass
class _Standalone:
    """What an objective's loader reads from an engine, without a generator."""

    device: torch.device
    name: str | None = None
    scorer: object | None = None
    scorer_name: str | None = None


def _to_tensor(images) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) for im in images])


def _objective_rescorer(name: str, model_id: str | None) -> Rescorer:
    from ..models import resolve_device

    spec = get_objective(name)
    model = spec.load(_Standalone(resolve_device(None)), model_id or None)

    @torch.no_grad()
    def score(images, prompt: str) -> list[float]:
        return spec.bind(model, prompt)(_to_tensor(images)).tolist()

    return score


def _imagereward() -> Rescorer:
    try:
        import ImageReward as reward_lib  # noqa: N813
    except ImportError:
        raise DpoDiffError("the imagereward scorer needs an extra: pip install 'dpo-diff[scorers]'") from None
    model = reward_lib.load("ImageReward-v1.0")

    @torch.no_grad()
    def score(images, prompt: str) -> list[float]:
        return [float(model.score(prompt, image)) for image in images]

    return score


def make_rescorer(spec: str) -> tuple[str, Rescorer]:
    """(name, scorer) for an objective (``clip``, ``pickscore``, optionally ``:ID_OR_PATH``) or ``imagereward``."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in OBJECTIVES:
        return kind, _objective_rescorer(kind, arg.strip())
    if kind == "imagereward":
        return "imagereward", _imagereward()
    choices = ", ".join(f"{k}, {k}:ID_OR_PATH" for k in OBJECTIVES)
    raise DpoDiffError(f"unknown scorer '{spec}': use {choices} or imagereward")
