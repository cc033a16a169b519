"""The relaxed prompt encoding: the sampled choice's layout, mixtures of the present slots' words
through every text encoder, presence gradients straight through (see the package's doc)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..pipelines.conditioning import Conditioning, TokenMixture
from ..pipelines.stable_diffusion import StableDiffusionModel
from .layout import TokenizedSpace

def presence(tspace: TokenizedSpace, weights: Tensor) -> tuple[bool, ...]:
    """Which slots say something in the choice a relaxed sample stands for (its per-slot argmax)."""
    w = weights.detach().masked_fill(~tspace.mask, float("-inf"))
    picked = w.argmax(dim=-1, keepdim=True)
    return tuple(bool(b) for b in (~tspace.empty.gather(-1, picked)).squeeze(-1).tolist())


def _word_weights(tspace: TokenizedSpace, weights: Tensor) -> tuple[Tensor, Tensor]:
    """(weights over the non-empty candidates, renormalised per slot; the slots' non-empty mass p)."""
    words = weights * (~tspace.empty & tspace.mask)
    p = words.sum(dim=-1)
    safe = torch.where(p > 1e-12, p, torch.ones_like(p))
    renorm = words / safe[:, None]
    # a slot with (numerically) no weight on any word: its words uniformly, for the "switched on" encoding
    uniform = (~tspace.empty & tspace.mask).to(weights.dtype)
    uniform = uniform / uniform.sum(-1, keepdim=True).clamp(min=1)
    renorm = torch.where((p > 1e-12)[:, None], renorm, uniform)
    return renorm, p


def _encode_layout(
    model: StableDiffusionModel, tspace: TokenizedSpace, words: Tensor, present: tuple[bool, ...], negative: bool
) -> Conditioning:
    ids, positions, slots = tspace.layout(present, negative)
    mixture = None  # only held words: plain text
    if positions.numel() == 0:
        if negative and not any(isinstance(p, tuple) for p in tspace.neg_pieces):
            return model.encode([""])  # no word: the pipeline's own empty negative prompt (SDXL: zeros)
    else:
        mixture = TokenMixture(positions, tspace.candidate_ids[slots], words[slots])
    if hasattr(model, "second_vocabulary"):  # T5 beside CLIP (SD3, FLUX): its own layout, see relaxation/t5.py
        return model.encode_ids(ids, mixture, model.second_vocabulary(tspace, words, present, negative))
    return model.encode_ids(ids, mixture)


def _encode_side(model, tspace: TokenizedSpace, weights: Tensor, negative: bool) -> Conditioning:
    """One prompt's conditioning, exact at its sampled layout, with presence gradients straight through."""
    side = set(tspace.space.negative_slots() if negative else tspace.space.positive_slots())
    words, p = _word_weights(tspace, weights)
    present = presence(tspace, weights)
    cond = _encode_layout(model, tspace, words, present, negative)
    if not weights.requires_grad:
        return cond
    variable = [j for j in sorted(side) if bool(tspace.can_be_empty[j])]
    for j in variable:
        flipped = list(present)
        flipped[j] = not present[j]
        with torch.no_grad():
            other = _encode_layout(model, tspace, words.detach(), tuple(flipped), negative)
        on, off = (cond.detach(), other) if present[j] else (other, cond.detach())
        nudge = p[j] - p[j].detach()  # exactly 0 in value; d/dp_j = 1
        cond = Conditioning(
            cond.embeds + nudge.to(cond.embeds.dtype) * (on.embeds - off.embeds),
            None if cond.pooled is None else cond.pooled + nudge.to(cond.pooled.dtype) * (on.pooled - off.pooled),
        )
    return cond


def encode_relaxed(
    model: StableDiffusionModel, tspace: TokenizedSpace, weights: Tensor
) -> tuple[Conditioning, Conditioning]:
    """(positive, negative) conditioning of the relaxed prompt, differentiable in ``weights``.

    Exact for every one-hot ``weights``: it equals ``model.encode`` of the rendered prompt and
    negative prompt (see the module doc for empty candidates).
    """
    cond = _encode_side(model, tspace, weights, negative=False)
    uncond = _encode_side(model, tspace, weights, negative=True) if tspace.has_negative else model.encode([""])
    return cond, uncond
