"""Cost accounting in UNet forward passes, the unit every solver is compared in.

One *pass* is the UNet applied to one latent at one timestep. A classifier-free-guided
step is therefore two passes (conditional and unconditional branch), and a backward
pass through a UNet call costs two more passes per forward pass it differentiates.
Text-encoder, VAE and CLIP calls are not counted: they are small next to the UNet and
the same for every solver.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CostMeter:
    """Counts UNet passes against an optional budget."""

    budget: int | None = None
    used: int = 0

    def add_forward(self, n: int) -> None:
        self.used += int(n)

    def add_backward(self, n_forward: int) -> None:
        self.used += 2 * int(n_forward)

    @property
    def left(self) -> float:
        return float("inf") if self.budget is None else self.budget - self.used

    def can_afford(self, cost: int) -> bool:
        return cost <= self.left
