"""The full text gradient: backpropagation through the whole sampling chain.

For comparison with the shortcut. The chain is differentiated with deterministic DDIM
updates on the pipeline's timestep grid, ending at the x0 estimate (the same path as
DDIM up to its last step; for other schedulers the no-grad sampler and this chain differ). With ``checkpoint=True`` each denoiser call
is recomputed in the backward pass, trading one more forward per step for memory that
no longer holds every step's activations.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from ..cost import CostMeter
from ..pipelines.stable_diffusion import Conditioning, StableDiffusionModel
from ..sampling import SamplingConfig
from .shortcut import Encoder, scored_mean, start_chain


class FullEstimator:
    name = "full"

    def __init__(self, checkpoint: bool = False):
        self.checkpoint = checkpoint

    def cost(self, t: int, sampling: SamplingConfig, meter: CostMeter | None = None) -> float:
        images = meter.image_cost(len(sampling.seeds), backward=True) if meter is not None else 0.0
        backward = meter.backward_passes() if meter is not None else 2
        return sampling.passes() * ((2 if self.checkpoint else 1) + backward) + images

    def loss(
        self,
        model: StableDiffusionModel,
        sampling: SamplingConfig,
        objective: Callable[[Tensor], Tensor],
        encode: Encoder,
        t: int = 0,
    ) -> Tensor:
        cond, uncond, scheduler, latents = start_chain(model, sampling, encode)
        timesteps = scheduler.timesteps
        x = scheduler.scale_model_input(latents, timesteps[0]).float()

        def step(x_in: Tensor, c: Conditioning, u: Conditioning | None, t_i: Tensor) -> Tensor:
            return model.model_output(x_in, t_i, c, u, sampling.guidance)

        before = model.meter.used
        for i, t_i in enumerate(timesteps):
            args = (x.to(model.dtype), cond, uncond, t_i)
            out = grad_checkpoint(step, *args, use_reentrant=False) if self.checkpoint else step(*args)
            x0, eps = model.x0_and_eps(out, x, t_i)
            x = model.ddim_step(x0, eps, timesteps[i + 1] if i + 1 < len(timesteps) else None)
        # backward: two passes per differentiated forward (checkpointing adds its recompute when it runs)
        model.meter.add_backward(model.meter.used - before)
        return scored_mean(model, objective, x)
