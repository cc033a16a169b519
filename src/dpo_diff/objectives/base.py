"""What an objective is, and how the registry knows one.

An :class:`Objective` is bound to one user prompt: it maps generated images (B, 3, H, W) in
[0, 1] to one value per image, differentiably in the images, and says which direction is
better. The :class:`~dpo_diff.task.Task` decides whether a search pushes it that way
(enhance) or the other (attack).

An :class:`ObjectiveSpec` is the registry entry: how to load the scoring model once per
engine, and how to bind it to a prompt. Adding an objective is one file defining a spec plus
one line in ``objectives/__init__.py``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor


@runtime_checkable
class Objective(Protocol):
    name: str
    lower_is_better: bool
    description: str  # what the value is, for tables ("CLIP distance to the prompt")
    scorer: Any  # the image model; its ``encode_images`` is what the cost meter counts

    def __call__(self, images: Tensor) -> Tensor:  # noqa: F821
        """One value per image."""
        ...


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registry entry. ``module`` is imported only when the objective is used, so the registry
    (and the CLI's check of ``--objective``) costs no torch import."""

    name: str
    lower_is_better: bool
    description: str
    module: str  # defines ``load(engine, model_id_or_None) -> scoring model`` and ``bind(model, prompt) -> Objective``
    hub_id: str | None = None  # the published model users pass for real use (README)
    engine_scorer: bool = False  # its model is the engine's own scorer (``load(..., scorer=)`` names it)

    def _module(self):
        return importlib.import_module(self.module)

    def load(self, engine: Any, name: str | None) -> Any:
        return self._module().load(engine, name)

    def bind(self, model: Any, prompt: str) -> Objective:
        return self._module().bind(model, prompt)
