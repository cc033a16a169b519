"""Adapters between diffusers pipelines and DPO-Diff."""

from .stable_diffusion import Conditioning, StableDiffusionModel

__all__ = ["Conditioning", "StableDiffusionModel"]
