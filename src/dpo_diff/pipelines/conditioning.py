"""What every pipeline adapter hands the estimators and solvers: a batch of text conditioning,
and a relaxed word as a mixture of token embeddings. Shared by all families."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Conditioning:
    """UNet text conditioning for a batch: token-wise embeddings (B, L, D), and for SDXL the
    second text encoder's pooled, projected embedding (B, P)."""

    embeds: Tensor
    pooled: Tensor | None = None

    def __len__(self) -> int:
        return self.embeds.shape[0]

    def _map(self, fn) -> Conditioning:
        return Conditioning(fn(self.embeds), None if self.pooled is None else fn(self.pooled))

    def detach(self) -> Conditioning:
        return self._map(Tensor.detach)

    def scale(self, factor: Tensor | float) -> Conditioning:
        return self._map(lambda x: x * factor)

    def repeat(self, n: int) -> Conditioning:
        """Each row ``n`` times in a row (candidate-major, seed-minor)."""
        return self._map(lambda x: x.repeat_interleave(n, dim=0))

    @staticmethod
    def cat(items: Sequence[Conditioning]) -> Conditioning:
        pooled = [c.pooled for c in items]
        if all(p is None for p in pooled):
            return Conditioning(torch.cat([c.embeds for c in items]))
        if any(p is None for p in pooled):
            raise ValueError("cannot join conditionings with and without a pooled embedding")
        return Conditioning(torch.cat([c.embeds for c in items]), torch.cat(pooled))


@dataclass
class TokenMixture:
    """At each of ``positions`` of a prompt, a weighted mix of candidate tokens' input embeddings.

    ``candidate_ids`` and ``weights`` are (P, K). Each text encoder mixes its *own* embedding
    table, so one mixture serves every encoder of a pipeline (SDXL has two).
    """

    positions: Tensor
    candidate_ids: Tensor
    weights: Tensor

    def embeddings(self, table: Tensor) -> Tensor:
        """The mixed embeddings (1, P, D) from an embedding table (V, D); differentiable in the weights."""
        table = table.detach()
        return torch.einsum("pk,pkd->pd", self.weights.to(table.dtype), table[self.candidate_ids])[None]
