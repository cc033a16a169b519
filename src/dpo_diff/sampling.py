"""How images are sampled in a run: which seeds, how many steps, how much guidance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingConfig:
    seeds: tuple[int, ...]
    steps: int
    guidance: float

    @property
    def guided(self) -> bool:
        return self.guidance > 1.0

    def passes(self, steps: int | None = None, n_prompts: int = 1) -> int:
        """UNet passes to run ``steps`` steps for ``n_prompts`` prompts over all seeds."""
        steps = self.steps if steps is None else steps
        return n_prompts * len(self.seeds) * steps * (2 if self.guided else 1)
