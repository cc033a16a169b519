"""The shortcut text gradient (DPO-Diff, Sec. 4.2).

Sample without gradients from x_T down to step t_i, take ``k`` denoiser steps with gradients,
estimate x0 in closed form, decode it with the VAE and score it. Memory and time do not
grow with the number of sampling steps: only ``k`` denoiser calls are differentiated.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ..cost import CostMeter
from ..pipelines.stable_diffusion import Conditioning, StableDiffusionModel
from ..sampling import SamplingConfig
from .schedules import to_run_steps

Encoder = Callable[[], tuple[Conditioning, Conditioning | None]]


def start_chain(model: StableDiffusionModel, sampling: SamplingConfig, encode: Encoder):
    """Encode the (relaxed) prompts once per seed and draw x_T: (cond, uncond, scheduler, latents)."""
    n = len(sampling.seeds)
    cond, uncond = encode()
    cond = cond.repeat(n)
    uncond = uncond.repeat(n) if (uncond is not None and sampling.guided) else None
    scheduler = model.make_scheduler(sampling.steps)
    latents = model.initial_latents(sampling.seeds) * scheduler.init_noise_sigma
    return cond, uncond, scheduler, latents


class ShortcutEstimator:
    name = "shortcut"

    def __init__(self, k: int = 1):
        if k < 1:
            raise ValueError("the shortcut needs at least one grad step")
        self.k = k

    def start_step(self, t: int, sampling: SamplingConfig) -> int:
        return to_run_steps(t, sampling.steps, min(self.k, sampling.steps))

    def cost(self, t: int, sampling: SamplingConfig, meter: CostMeter | None = None) -> float:
        """denoiser-pass equivalents of one estimate at t_i = ``t`` (out of 50): no-grad part + k x (forward +
        backward), plus decoding and scoring each seed's image with a backward (when ``meter`` counts them)."""
        k = min(self.k, sampling.steps)
        images = meter.image_cost(len(sampling.seeds), backward=True) if meter is not None else 0.0
        backward = meter.backward_passes() if meter is not None else 2
        return sampling.passes(self.start_step(t, sampling)) + (1 + backward) * sampling.passes(k) + images

    def loss(
        self,
        model: StableDiffusionModel,
        sampling: SamplingConfig,
        objective: Callable[[Tensor], Tensor],
        encode: Encoder,
        t: int,
    ) -> Tensor:
        """The objective's mean over seeds, differentiable in whatever ``encode`` depends on.

        Call ``.backward()`` on it; its cost (forward and backward) is already on ``model.meter``.
        """
        k = min(self.k, sampling.steps)
        start = self.start_step(t, sampling)
        cond, uncond, scheduler, latents = start_chain(model, sampling, encode)
        latents = model.sample(
            latents,
            scheduler,
            cond.detach(),
            uncond.detach() if uncond is not None else None,
            sampling.guidance,
            0,
            start,
            generators=model.step_generators(sampling.seeds),
        )
        timesteps = scheduler.timesteps
        x = scheduler.scale_model_input(latents, timesteps[start]).float()  # variance-preserving x_t
        before = model.meter.used
        for i in range(start, start + k):
            t_i = timesteps[i]
            out = model.model_output(x.to(model.dtype), t_i, cond, uncond, sampling.guidance)
            x0, eps = model.x0_and_eps(out, x, t_i)
            x = model.ddim_step(x0, eps, timesteps[i + 1] if i + 1 < start + k else None)
        model.meter.add_backward(model.meter.used - before)
        return scored_mean(model, objective, x)


def scored_mean(model: StableDiffusionModel, objective: Callable[[Tensor], Tensor], x0: Tensor) -> Tensor:
    """The objective's mean over the decoded ``x0``, with the decode and score (and their backward) counted."""
    n = x0.shape[0]
    loss = objective(model.decode(x0)).mean()
    model.meter.add_decode(n, backward=True)
    model.meter.add_score(n)
    model.meter.add_score(n, backward=True)
    return loss
