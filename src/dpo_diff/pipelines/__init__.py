"""Adapters between diffusers pipelines and DPO-Diff: one per pipeline family, one factory.

SD3 and FLUX (``stable_diffusion_3.py``, ``flux.py``, on ``flow_matching.py``) are imported when
their pipeline is met, so SD-only use does not import them."""

from __future__ import annotations

from ..cost import CostMeter
from ..errors import ModelNotFoundError
from .stable_diffusion import Conditioning, StableDiffusionModel, TokenMixture
from .stable_diffusion_xl import StableDiffusionXLModel


def make_model(pipe, name: str = "model", meter: CostMeter | None = None) -> StableDiffusionModel:
    """The adapter for a loaded diffusers pipeline, or a one-line refusal for other pipelines."""
    from diffusers import FluxPipeline, StableDiffusion3Pipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

    if isinstance(pipe, FluxPipeline):
        from .flux import FluxModel

        return FluxModel(pipe, name, meter)
    if isinstance(pipe, StableDiffusion3Pipeline):
        from .stable_diffusion_3 import StableDiffusion3Model

        return StableDiffusion3Model(pipe, name, meter)
    if isinstance(pipe, StableDiffusionXLPipeline):
        return StableDiffusionXLModel(pipe, name, meter)
    if isinstance(pipe, StableDiffusionPipeline):
        return StableDiffusionModel(pipe, name, meter)
    raise ModelNotFoundError(
        f"'{name}' is a {type(pipe).__name__}; dpo-diff supports StableDiffusionPipeline (SD 1.x / 2.x, "
        "SD-Turbo), StableDiffusionXLPipeline (SDXL, SDXL-Turbo), StableDiffusion3Pipeline (SD3, SD3.5) "
        "and FluxPipeline (FLUX.1)"
    )


__all__ = ["Conditioning", "StableDiffusionModel", "StableDiffusionXLModel", "TokenMixture", "make_model"]
