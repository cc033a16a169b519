"""Gumbel-softmax relaxation of the discrete word choice, and relaxed prompt encoding.

Each slot gets one token position in the (positive or negative) prompt. A relaxed choice
is a probability vector per slot; the slot's embedding is the mixture of its candidates'
token embeddings, written into the text encoder's input embeddings (a forward hook), so
the mixture goes through the whole text encoder. A one-hot mixture reproduces the
encoder's output for the real word exactly.

An empty candidate (candidate 0 of a negative slot: "say nothing") occupies its position
with the model's filler token (the pad token; SDXL: the second tokenizer's pad) in the relaxed prompt, while the rendered negative prompt
simply leaves the word out. That is an approximation of our choice; the authors' release
does not say what it does here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .pipelines import Conditioning, StableDiffusionModel, TokenMixture
from .spaces import Choice, SearchSpace


@dataclass
class TokenizedSpace:
    """A search space laid out on a model's tokenizer."""

    space: SearchSpace
    pos_ids: Tensor  # (1, L) token ids of the positive prompt, candidate 0 at slot positions
    pos_positions: Tensor  # token positions of positive slots that fit in L
    pos_slots: Tensor  # which slot each of those positions belongs to
    neg_ids: Tensor
    neg_positions: Tensor
    neg_slots: Tensor
    candidate_ids: Tensor  # (S, K) candidate token ids per slot, padded
    mask: Tensor  # (S, K) True where a candidate exists

    @property
    def has_negative(self) -> bool:
        return bool(self.space.negative_slots())


def _layout(model: StableDiffusionModel, pieces: list[str | int], slot_token) -> tuple[list[int], list[int], list[int]]:
    """Token ids for pieces (text or slot index), plus (positions, slots) of the slots."""
    ids: list[int] = []
    positions: list[int] = []
    slots: list[int] = []
    for piece in pieces:
        if isinstance(piece, int):
            positions.append(len(ids) + 1)  # +1 for the start token
            slots.append(piece)
            ids.append(slot_token(piece))
        elif piece.strip():
            ids.extend(model.word_token_ids(piece))
    return ids, positions, slots


def _pad(model: StableDiffusionModel, ids: list[int], positions: list[int], slots: list[int], what: str):
    limit = model.max_length - 2
    if len(ids) > limit:
        warnings.warn(f"{what} is {len(ids)} tokens; the text encoder reads {limit}, the rest is cut", stacklevel=3)
        ids = ids[:limit]
        kept = [(p, s) for p, s in zip(positions, slots) if p <= limit]
        positions, slots = [p for p, _ in kept], [s for _, s in kept]
    tok = model.tokenizer
    pad = model.pad_token_id
    full = [tok.bos_token_id, *ids, tok.eos_token_id]
    full += [pad] * (model.max_length - len(full))
    dev = model.device
    return (
        torch.tensor([full], device=dev),
        torch.tensor(positions, dtype=torch.long, device=dev),
        torch.tensor(slots, dtype=torch.long, device=dev),
    )


def tokenize_space(space: SearchSpace, model: StableDiffusionModel) -> TokenizedSpace:
    """Lay ``space`` out on ``model``'s tokenizer (every candidate must be one token)."""
    def slot_token(i: int) -> int:
        cand = space.slots[i].candidates[0]
        return model.word_token_ids(cand)[0] if cand else model.filler_token_id

    pieces: list[str | int] = []
    cursor = 0
    for i in space.positive_slots():
        start, end = space.slots[i].span
        pieces += [space.prompt[cursor:start], i]
        cursor = end
    pieces.append(space.prompt[cursor:])
    pos = _pad(model, *_layout(model, pieces, slot_token), what="the prompt")

    neg_pieces: list[str | int] = []
    for j, i in enumerate(space.negative_slots()):
        neg_pieces += ([","] if j else []) + [i]
    neg = _pad(model, *_layout(model, neg_pieces, slot_token), what="the negative prompt")

    k = max(space.sizes, default=1)
    cand = torch.zeros(len(space.slots), k, dtype=torch.long)
    mask = torch.zeros(len(space.slots), k, dtype=torch.bool)
    for i, slot in enumerate(space.slots):
        for j, word in enumerate(slot.candidates):
            ids = model.word_token_ids(word) if word else [model.filler_token_id]
            if len(ids) != 1:
                raise ValueError(f"candidate {word!r} of slot {slot.label!r} is {len(ids)} tokens, not 1")
            cand[i, j] = ids[0]
            mask[i, j] = True
    return TokenizedSpace(space, *pos, *neg, cand.to(model.device), mask.to(model.device))


class RelaxedChoice(torch.nn.Module):
    """Learnable logits over each slot's candidates (padded; missing candidates masked)."""

    def __init__(self, mask: Tensor, init: float = 0.0):
        super().__init__()
        self.register_buffer("mask", mask.clone())
        self.logits = torch.nn.Parameter(torch.full(mask.shape, float(init), device=mask.device))

    def masked_logits(self) -> Tensor:
        return self.logits.masked_fill(~self.mask, float("-inf"))

    def probs(self) -> Tensor:
        return F.softmax(self.masked_logits(), dim=-1)

    def gumbel_weights(self, tau: float = 1.0, generator: torch.Generator | None = None, hard: bool = False) -> Tensor:
        """A Gumbel-softmax sample of the slot weights (S, K), differentiable in the logits."""
        u = torch.rand(self.logits.shape, generator=generator).to(self.logits.device)
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-10)))
        soft = F.softmax((self.masked_logits() + gumbel) / tau, dim=-1)
        if not hard:
            return soft
        index = soft.argmax(dim=-1, keepdim=True)
        one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
        return one_hot - soft.detach() + soft  # straight-through

    def argmax(self) -> Choice:
        return tuple(int(i) for i in self.masked_logits().argmax(dim=-1).tolist())

    def sample(self, generator: torch.Generator | None = None) -> Choice:
        """A discrete choice drawn from the learned distribution (Gumbel-max)."""
        u = torch.rand(self.logits.shape, generator=generator).to(self.logits.device)
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-10)))
        return tuple(int(i) for i in (self.masked_logits().detach() + gumbel).argmax(dim=-1).tolist())

    @torch.no_grad()
    def clamp_(self, low: float, high: float) -> None:
        self.logits.clamp_(low, high)


def one_hot(space: SearchSpace, choice: Choice, k: int, device=None) -> Tensor:
    """The weights (S, K) of a discrete choice."""
    w = torch.zeros(len(space.slots), k, device=device)
    w[torch.arange(len(choice)), torch.tensor(choice)] = 1.0
    return w


def encode_relaxed(
    model: StableDiffusionModel, tspace: TokenizedSpace, weights: Tensor
) -> tuple[Conditioning, Conditioning]:
    """(positive, negative) conditioning of the relaxed prompt, differentiable in ``weights``."""
    cand = tspace.candidate_ids
    pos = TokenMixture(tspace.pos_positions, cand[tspace.pos_slots], weights[tspace.pos_slots])
    cond = model.encode_ids(tspace.pos_ids, pos)
    if tspace.has_negative:
        neg = TokenMixture(tspace.neg_positions, cand[tspace.neg_slots], weights[tspace.neg_slots])
        uncond = model.encode_ids(tspace.neg_ids, neg)
        if model.zeros_for_empty_negative:
            # SDXL conditions on zeros when there is no negative prompt: weigh the encoding by the
            # probability that some slot says something (each slot's candidate 0 is "nothing"),
            # so one-hot choices give exactly what is scored, the all-empty one zeros.
            slots = torch.tensor(tspace.space.negative_slots(), device=weights.device)
            uncond = uncond.scale(1 - weights[slots, 0].prod())
    else:
        uncond = model.encode([""])
    return cond, uncond
