"""The learnable distribution over a space (Gumbel-softmax logits per slot), and one-hot choices."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..spaces import Choice, SearchSpace

class RelaxedChoice(torch.nn.Module):
    """Learnable logits over each slot's candidates (padded; missing candidates masked)."""

    def __init__(self, mask: Tensor, init: float = 0.0, first: float | None = None, space_mask: Tensor | None = None):
        """``mask``: the candidates the relaxation mixes (they get learned logits); ``space_mask``:
        every candidate of the space (default ``mask``). Logits start at ``init``, candidate 0's
        at ``first`` when given; that start is the prior of the candidates never learned."""
        super().__init__()
        self.register_buffer("mask", mask.clone())
        self.register_buffer("space_mask", (mask if space_mask is None else space_mask).clone() | mask)
        start = torch.full(mask.shape, float(init), device=mask.device)
        if first is not None:
            start[:, 0] = float(first)
        self.register_buffer("prior", start.clone())
        self.logits = torch.nn.Parameter(start)

    def masked_logits(self) -> Tensor:
        return self.logits.masked_fill(~self.mask, float("-inf"))

    def space_logits(self) -> Tensor:
        """Logits over the whole space: learned where the relaxation mixes a candidate, the starting
        logit (the prior) for every other candidate (multi-token ones, and held slots')."""
        return torch.where(self.mask, self.logits.detach(), self.prior).masked_fill(~self.space_mask, float("-inf"))

    def sample_space(self, generator: torch.Generator | None = None) -> Choice:
        """A discrete choice over the whole space from :meth:`space_logits` (Gumbel-max); the same
        draw as :meth:`sample` when every candidate is relaxed."""
        u = torch.rand(self.logits.shape, generator=generator).to(self.logits.device)
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-10)))
        return tuple(int(i) for i in (self.space_logits() + gumbel).argmax(dim=-1).tolist())

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
