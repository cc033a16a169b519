"""PickScore (Kirstain et al., 2023): a CLIP-H fine-tuned on human preferences (Pick-a-Pic).

Its score is ``logit_scale * cos(image, prompt)`` (higher is better). It is a transformers
``CLIPModel``, so the score is differentiable in the images and GPO can optimize it directly.
The weights live at ``yuvalkirstain/PickScore_v1``, its tokenizer and preprocessing at
``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``. For the random-weight presets a small CLIP of the
preset's scorer architecture (its own seed) stands in, so tests run offline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .clip import ClipScorer

PICKSCORE = "yuvalkirstain/PickScore_v1"
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
PRESET_SEED_OFFSET = 7919  # a stand-in distinct from the preset's CLIP scorer


class PickScore:
    """PickScore of images against the user's prompt."""

    name = "pickscore"
    lower_is_better = False
    description = "PickScore of the image for the prompt"

    def __init__(self, scorer: ClipScorer, prompt: str):
        self.scorer = scorer
        self.prompt = prompt
        self.target = F.normalize(scorer.encode_text([prompt]), dim=-1)
        self.scale = scorer.model.logit_scale.exp().detach().float()

    def __call__(self, images: Tensor) -> Tensor:
        image = F.normalize(self.scorer.encode_images(images), dim=-1)
        return self.scale * (image * self.target).sum(-1)


def load(engine, name: str | None = None) -> ClipScorer:
    """PickScore's model: ``name`` if given, a seeded stand-in for presets, else the published weights."""
    from ..models import PRESETS, build_preset_scorer, clip_tokenizer, load_scorer_parts
    from ..models.loading import load_clip_preprocessing

    device = engine.device
    if name is None and engine.name is not None and engine.name in PRESETS:
        model, pre = build_preset_scorer(engine.name, seed_offset=PRESET_SEED_OFFSET)
        tokenizer = clip_tokenizer()
    else:
        model, tokenizer, pre = load_scorer_parts(name or PICKSCORE, device)
        if name is None:  # the published model keeps its tokenizer and preprocessing in another repo
            tokenizer, pre = load_clip_preprocessing(PICKSCORE_PROCESSOR)
    with torch.no_grad():
        return ClipScorer(model, tokenizer, pre["image_size"], pre["mean"], pre["std"]).to(device)


bind = PickScore
