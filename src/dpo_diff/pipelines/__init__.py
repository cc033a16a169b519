"""Adapters between diffusers pipelines and DPO-Diff: one file per pipeline family, one table.

A family module defines ``Adapter`` (what the estimators and solvers call: encode a relaxed
prompt, a guided denoiser call, x0, a sampler step, decode) and ``build(cfg, scheduler, seeded)``
(its pipeline from a preset's configs, see ``models/architectures.py``). Adding a family is one
new file plus one line in ``FAMILIES``. The table is plain data: a family's module is imported
when it is used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ModelNotFoundError

if TYPE_CHECKING:
    from ..cost import CostMeter
    from .conditioning import Conditioning, TokenMixture
    from .stable_diffusion import StableDiffusionModel
    from .stable_diffusion_xl import StableDiffusionXLModel


@dataclass(frozen=True)
class Family:
    name: str
    pipeline: str  # the diffusers pipeline class it adapts
    module: str  # defines ``Adapter`` and ``build``
    models: str  # what users run with it (for messages)

    def _module(self):
        return importlib.import_module(self.module)

    @property
    def adapter(self) -> type:
        return self._module().Adapter

    def build(self, cfg: dict, scheduler, seeded):
        return self._module().build(cfg, scheduler, seeded)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("sd", "StableDiffusionPipeline", "dpo_diff.pipelines.stable_diffusion", "SD 1.x / 2.x, SD-Turbo"),
    Family("sdxl", "StableDiffusionXLPipeline", "dpo_diff.pipelines.stable_diffusion_xl", "SDXL, SDXL-Turbo"),
    Family("sd3", "StableDiffusion3Pipeline", "dpo_diff.pipelines.stable_diffusion_3", "SD3, SD3.5"),
    Family("flux", "FluxPipeline", "dpo_diff.pipelines.flux", "FLUX.1 schnell / dev"),
)}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ModelNotFoundError(f"unknown pipeline family '{name}': one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def make_model(pipe, name: str = "model", meter: CostMeter | None = None):
    """The adapter for a loaded diffusers pipeline, or a one-line refusal for other pipelines."""
    import diffusers

    for family in FAMILIES.values():
        if type(pipe).__name__ == family.pipeline or isinstance(pipe, getattr(diffusers, family.pipeline)):
            return family.adapter(pipe, name, meter)
    supported = "; ".join(f"{f.pipeline} ({f.models})" for f in FAMILIES.values())
    raise ModelNotFoundError(f"'{name}' is a {type(pipe).__name__}; dpo-diff supports {supported}")


_LAZY = {"Conditioning": "conditioning", "StableDiffusionModel": "stable_diffusion",
         "TokenMixture": "conditioning", "StableDiffusionXLModel": "stable_diffusion_xl"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'dpo_diff.pipelines' has no attribute {name!r}")


__all__ = ["FAMILIES", "Conditioning", "Family", "StableDiffusionModel", "StableDiffusionXLModel", "TokenMixture",
           "get_family", "make_model"]
