"""The spherical CLIP loss between generated images and the user's prompt (the paper's objective).

``spherical_distance`` is the functional form; :class:`ClipScorer` wraps a transformers
``CLIPModel`` with differentiable image preprocessing; :class:`ClipLoss` binds a scorer to
one prompt and is what solvers minimize (enhancement) or maximize (attack).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_CLIP = "openai/clip-vit-base-patch32"


def spherical_distance(x: Tensor, y: Tensor) -> Tensor:
    """``2 * arcsin(|x̂ - ŷ| / 2)^2`` of the L2-normalised embeddings, over the last dim.

    0 for identical directions, pi^2/2 for opposite ones. As in CLIP-guided diffusion.
    """
    x = F.normalize(x.float(), dim=-1)
    y = F.normalize(y.float(), dim=-1)
    return (x - y).norm(dim=-1).div(2).clamp(max=1.0).arcsin().pow(2).mul(2)


def _features(out) -> Tensor:
    """transformers 5 returns an output object from get_*_features; 4.x a tensor."""
    return out if isinstance(out, Tensor) else out.pooler_output


class ClipScorer(torch.nn.Module):
    """A CLIP model that embeds prompts and [0, 1] images, differentiably in the images."""

    def __init__(self, model, tokenizer, image_size: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.image_size = int(image_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def load(cls, name: str, device) -> ClipScorer:
        """A scorer from a preset name, a bundled model, a Hub id or a folder."""
        from ..models import load_scorer_parts

        model, tokenizer, pre = load_scorer_parts(name, device)
        return cls(model, tokenizer, pre["image_size"], pre["mean"], pre["std"]).to(device)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> Tensor:
        batch = self.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=77, return_tensors="pt"
        ).to(self.device)
        return _features(self.model.get_text_features(input_ids=batch.input_ids)).float()

    def preprocess(self, images: Tensor) -> Tensor:
        """[0, 1] images (B, 3, H, W) to CLIP input: resize the short side, centre-crop, normalise."""
        images = images.float().to(self.device)
        h, w = images.shape[-2:]
        if (h, w) != (self.image_size, self.image_size):
            scale = self.image_size / min(h, w)
            size = (max(self.image_size, round(h * scale)), max(self.image_size, round(w * scale)))
            images = F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)
            top = (images.shape[-2] - self.image_size) // 2
            left = (images.shape[-1] - self.image_size) // 2
            images = images[..., top : top + self.image_size, left : left + self.image_size]
        return (images - self.mean) / self.std

    def encode_images(self, images: Tensor) -> Tensor:
        return _features(self.model.get_image_features(pixel_values=self.preprocess(images))).float()

    def distance(self, images: Tensor, text_embeds: Tensor) -> Tensor:
        """Spherical distance of each image to ``text_embeds`` (1 or B rows)."""
        return spherical_distance(self.encode_images(images), text_embeds)


class ClipLoss:
    """The objective: spherical CLIP distance of images to the user's original prompt."""

    name = "clip"
    lower_is_better = True
    description = "CLIP distance to the prompt"

    def __init__(self, scorer: ClipScorer, prompt: str):
        self.scorer = scorer
        self.prompt = prompt
        self.target = scorer.encode_text([prompt])

    def __call__(self, images: Tensor) -> Tensor:
        return self.scorer.distance(images, self.target)


def load(engine, name: str | None) -> ClipScorer:
    """The engine's own CLIP scorer (already loaded), or another one by name (default: CLIP ViT-B/32)."""
    if engine.scorer is not None and (name is None or name == engine.scorer_name):
        return engine.scorer
    return ClipScorer.load(name or DEFAULT_CLIP, engine.device)


bind = ClipLoss
