"""How images are sampled in a run: which seeds, how many steps, how much guidance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingConfig:
    seeds: tuple[int, ...]
    steps: int
    guidance: float
    # denoiser calls the scheduler makes for ``steps`` (PNDM: steps + 1; Heun: 2 * steps - 1); None: steps
    timesteps: int | None = None

    @property
    def guided(self) -> bool:
        return self.guidance > 1.0

    def passes(self, steps: int | None = None, n_prompts: int = 1) -> int:
        """denoiser passes to run ``steps`` steps (default: a whole run) for ``n_prompts`` prompts over all seeds."""
        steps = (self.timesteps or self.steps) if steps is None else steps
        return n_prompts * len(self.seeds) * steps * (2 if self.guided else 1)
