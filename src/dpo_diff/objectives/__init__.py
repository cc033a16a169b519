"""Objectives that score generated images: one file per objective, one registry line each.

The registry is plain data (no torch import); each objective's module is imported when it is
used. An objective module defines ``load(engine, model_id_or_None)`` (its scoring model, loaded
once per engine) and ``bind(model, prompt)`` (an :class:`Objective` for one prompt).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import DpoDiffError
from .base import Objective, ObjectiveSpec

OBJECTIVES: dict[str, ObjectiveSpec] = {spec.name: spec for spec in (
    ObjectiveSpec("clip", True, "CLIP distance to the prompt", "dpo_diff.objectives.clip",
                  hub_id="openai/clip-vit-base-patch32", engine_scorer=True),
    ObjectiveSpec("pickscore", False, "PickScore of the image for the prompt", "dpo_diff.objectives.pickscore",
                  hub_id="yuvalkirstain/PickScore_v1"),
)}


def get_objective(name: str) -> ObjectiveSpec:
    """The registry entry of ``name``, or a one-line refusal naming the choices."""
    key = name.strip().lower()
    if key not in OBJECTIVES:
        raise DpoDiffError(f"unknown objective '{name}': use {' or '.join(OBJECTIVES)}")
    return OBJECTIVES[key]


_LAZY = {"ClipLoss": "clip", "ClipScorer": "clip", "spherical_distance": "clip", "PickScore": "pickscore"}

if TYPE_CHECKING:
    from .clip import ClipLoss, ClipScorer, spherical_distance
    from .pickscore import PickScore


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'dpo_diff.objectives' has no attribute {name!r}")


__all__ = [
    "OBJECTIVES", "ClipLoss", "ClipScorer", "Objective", "ObjectiveSpec", "PickScore", "get_objective",
    "spherical_distance",
]
