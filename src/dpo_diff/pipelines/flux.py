"""The adapter for ``FluxPipeline`` (FLUX.1 schnell and dev).

What the pipeline does with a prompt, and what we do with a relaxed one:

- **CLIP-L, pooled only.** FLUX reads CLIP's pooled output (``pooler_output``, the end-of-text
  state), not its token states; the relaxed word reaches it through CLIP's attention.
- **T5** gives the token states the transformer attends to (B, 512, 4096; ``txt_ids`` are
  zeros). The relaxed word is mixed in T5's own embedding table at the T5 layout's positions
  (:mod:`dpo_diff.relaxation.t5`).
- **Guidance.** FLUX.1 dev is guidance-distilled: the guidance scale is an *input* of the
  transformer (``guidance`` embedding, :attr:`FluxModel.embedded_guidance`, the pipeline's
  default 3.5), not two passes; schnell has no guidance embedding. A negative prompt only acts
  through "true CFG" (``true_cfg_scale`` above 1 with a negative prompt): that is dpo-diff's
  classifier-free guidance scale (``--true-cfg`` / ``--guidance``), default 1 (off) for FLUX,
  so the negative-prompt spaces need it above 1 and are refused in one line otherwise.
  ``neg + s (pos - neg)``, as the pipeline; our two branches share one batched call.
- **Latents** are packed as the pipeline packs them: 2x2 patches of the VAE latent,
  (B, h/2 * w/2, 4 C), with the image position ids; unpacked before decoding
  (``x / scaling_factor + shift_factor``).
- **Sampler.** ``FlowMatchEulerDiscreteScheduler`` with the pipeline's sigmas
  (linspace(1, 1/steps, steps)) and resolution-dependent shift mu.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..cost import CostMeter
from ..errors import ModelNotFoundError
from .flow_matching import FlowMatchingModel, build_vae_and_t5
from .conditioning import Conditioning, TokenMixture
from .stable_diffusion_3 import calculate_shift


class FluxModel(FlowMatchingModel):
    """The generator side of DPO-Diff for a ``FluxPipeline``."""

    t5_max_length = 512  # FluxPipeline's default max_sequence_length
    #: guidance scale fed to a guidance-distilled transformer (FLUX.1 dev); FluxPipeline's default
    embedded_guidance: float = 3.5
    #: what dpo-diff runs by default: the pipeline's 28 steps (schnell: 4), no true CFG
    run_defaults = {"steps": 28, "guidance": 1.0}
    guidance_option = "--true-cfg"

    def __init__(self, pipe, name: str = "model", meter: CostMeter | None = None):
        super().__init__(pipe, name, meter)
        if pipe.text_encoder is None or pipe.text_encoder_2 is None:
            raise ModelNotFoundError(f"'{name}': dpo-diff needs FLUX's CLIP and T5 text encoders")
        self.text_encoder = pipe.text_encoder.requires_grad_(False)
        self.tokenizer = pipe.tokenizer
        self.t5_encoder = pipe.text_encoder_2.requires_grad_(False)
        self.t5_tokenizer = pipe.tokenizer_2
        self.max_length = int(pipe.tokenizer_max_length)
        self.guidance_embeds = bool(self.transformer.config.guidance_embeds)
        if not self.guidance_embeds:  # schnell: a few-step model (4 steps in its model card)
            self.run_defaults = {"steps": 4, "guidance": 1.0}
        side = int(pipe.default_sample_size) * self.vae_scale_factor
        self.set_resolution(side, side)

    def set_resolution(self, height: int, width: int | None = None) -> None:
        width = width or height
        multiple = self.vae_scale_factor * 2
        if height % multiple or width % multiple or min(height, width) <= 0:
            raise ValueError(f"the resolution must be a positive multiple of {multiple} pixels for this model")
        self.height, self.width = int(height), int(width)
        self.latent_h, self.latent_w = 2 * (self.height // multiple), 2 * (self.width // multiple)
        ids = torch.zeros(self.latent_h // 2, self.latent_w // 2, 3)
        ids[..., 1] += torch.arange(self.latent_h // 2)[:, None]
        ids[..., 2] += torch.arange(self.latent_w // 2)[None, :]
        self.image_ids = ids.reshape(-1, 3).to(self.device, self.dtype)

    # ------------------------------------------------------------------ text
    def encode_ids(self, ids: Tensor, mixture: TokenMixture | None = None, second=None) -> Conditioning:
        """T5's token states (the transformer's text tokens) and CLIP's pooled output."""
        if second is None:
            raise ValueError("FLUX needs the T5 ids of the prompt beside the CLIP ids")
        ids = ids.to(self.device)
        with self.mixed_embeddings(self.text_encoder, mixture):
            pooled = self.text_encoder(ids, output_hidden_states=False).pooler_output.to(self.text_encoder.dtype)
        t5_ids, t5_mixture = second
        t5 = self.encode_t5(t5_ids.expand(ids.shape[0], -1), t5_mixture)
        return Conditioning(t5.to(self.dtype), pooled.to(self.dtype))

    # ------------------------------------------------------------- sampling
    def scheduler_kwargs(self, steps: int) -> dict:
        config = self.scheduler_config
        sigmas = None if config.get("use_flow_sigmas", False) else np.linspace(1.0, 1 / steps, steps)
        seq_len = (self.latent_h // 2) * (self.latent_w // 2)
        mu = calculate_shift(seq_len, config, max_shift_default=1.15)
        return {"sigmas": sigmas, "mu": mu}

    def _make_scheduler(self, steps: int | None = None):
        scheduler = super()._make_scheduler(None)
        if steps is not None:
            kwargs = self.scheduler_kwargs(steps)
            if kwargs["sigmas"] is None:
                scheduler.set_timesteps(steps, device=self.device, mu=kwargs["mu"])
            else:
                scheduler.set_timesteps(sigmas=kwargs["sigmas"], device=self.device, mu=kwargs["mu"])
        return scheduler

    def pack(self, latents: Tensor) -> Tensor:
        b, c, h, w = latents.shape
        latents = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
        return latents.reshape(b, (h // 2) * (w // 2), c * 4)

    def _vae_latents(self, latents: Tensor) -> Tensor:
        b, _, channels = latents.shape
        latents = latents.view(b, self.latent_h // 2, self.latent_w // 2, channels // 4, 2, 2)
        return latents.permute(0, 3, 1, 4, 2, 5).reshape(b, channels // 4, self.latent_h, self.latent_w)

    def initial_latents(self, seeds: Sequence[int]) -> Tensor:
        """Packed x_T per seed, drawn on the CPU as the pipeline draws it with a CPU generator."""
        shape = (self.transformer.config.in_channels // 4, self.latent_h, self.latent_w)
        noise = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        return self.pack(torch.stack(noise)).to(self.device, self.dtype)

    def unet_kwargs(self, cond: Conditioning) -> dict:
        if cond.pooled is None:
            raise ValueError("FLUX conditioning needs the pooled CLIP embedding")
        batch = cond.embeds.shape[0]
        guidance = None
        if self.guidance_embeds:
            guidance = torch.full([batch], self.embedded_guidance, device=self.device, dtype=torch.float32)
        text_ids = torch.zeros(cond.embeds.shape[1], 3, device=self.device, dtype=self.text_encoder.dtype)
        return {"encoder_hidden_states": cond.embeds, "pooled_projections": cond.pooled, "guidance": guidance,
                "txt_ids": text_ids, "img_ids": self.image_ids}

    def _unet(self, x: Tensor, t: Tensor, cond: Conditioning) -> Tensor:
        self.meter.add_forward(x.shape[0])
        t = torch.as_tensor(t, device=x.device).expand(x.shape[0]).to(x.dtype)
        return self.transformer(hidden_states=x, timestep=t / 1000, **self.unet_kwargs(cond), return_dict=False)[0]


Adapter = FluxModel


def build(cfg: dict, scheduler, seeded):
    """A ``FluxPipeline`` from a preset's configs (``models/architectures_flow.py``), seeded."""
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from ..models.clip_bpe import clip_tokenizer
    from ..models.t5_tokenizer import t5_tokenizer

    seed = cfg["seed"]
    vae, t5 = build_vae_and_t5(cfg, seeded)
    transformer = seeded(seed, lambda: FluxTransformer2DModel(**cfg["transformer"])).eval()
    config_1 = CLIPTextConfig(**cfg["text_encoder"])
    text_encoder = seeded(seed + 2, lambda: CLIPTextModel(config_1)).eval()
    pipe = FluxPipeline(
        transformer=transformer, scheduler=scheduler, vae=vae,
        text_encoder=text_encoder, tokenizer=clip_tokenizer(),
        text_encoder_2=t5, tokenizer_2=t5_tokenizer(),
    )
    pipe.default_sample_size = cfg["default_sample_size"]  # 128 latent rows in FluxPipeline; tiny: 16
    return pipe
