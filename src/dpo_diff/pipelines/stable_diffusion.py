"""A thin adapter over a diffusers Stable Diffusion pipeline (SD 1.x / 2.x).

It exposes the pieces DPO-Diff needs and nothing else: token ids, text encoding with
*relaxed* word embeddings fed through the text encoder, no-grad sampling with the
pipeline's own scheduler, the closed-form x0 estimate for epsilon, v and sample
prediction, and VAE decoding. Every UNet call is counted in a :class:`CostMeter`.

SDXL (two text encoders, pooled embeddings, time ids) plugs in by overriding
:meth:`encode_ids` and :meth:`unet_kwargs` (see ``stable_diffusion_xl.py``); the solvers
and estimators only ever see :class:`Conditioning` and :class:`TokenMixture`.
"""

from __future__ import annotations

import copy
import inspect
import threading
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from ..cost import CostMeter
from .conditioning import Conditioning, TokenMixture


class StableDiffusionModel:
    """The generator side of DPO-Diff for a ``StableDiffusionPipeline``."""

    def __init__(self, pipe, name: str = "model", meter: CostMeter | None = None):
        self.pipe = pipe
        self.name = name
        self.unet = pipe.unet.requires_grad_(False)
        self.vae = pipe.vae.requires_grad_(False)
        self.text_encoder = pipe.text_encoder.requires_grad_(False)
        self.tokenizer = pipe.tokenizer
        self.scheduler_config = pipe.scheduler.config
        self.scheduler_class = type(pipe.scheduler)
        self.meter = meter or CostMeter()
        self.device = self.unet.device
        self.dtype = self.unet.dtype
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.height = self.width = int(self.unet.config.sample_size) * self.vae_scale_factor
        self.prediction_type = self.scheduler_config.get("prediction_type", "epsilon")
        self.alphas_cumprod = self._make_scheduler().alphas_cumprod.to(self.device, torch.float32)
        self.max_length = int(getattr(self.tokenizer, "model_max_length", 77))
        if self.max_length > 1000:  # tokenizers saved without a limit
            self.max_length = 77

    checkpointed = False  # gradient checkpointing inside the denoiser (see enable_checkpointing)

    def enable_checkpointing(self) -> None:
        """Gradient checkpointing inside the denoiser (diffusers' own, per block): a differentiated
        pass keeps only the blocks' inputs and recomputes the rest in the backward, so the grad
        steps of SDXL, SD3 or FLUX at full size fit in less memory. Values and gradients are
        unchanged; the recompute (one more forward per differentiated pass) is counted. Set on the
        shared model, so it holds for every run of the engine."""
        self.unet.enable_gradient_checkpointing()
        self.checkpointed = True

    def with_meter(self, meter: CostMeter) -> StableDiffusionModel:
        """This adapter counting into ``meter``: a shallow copy sharing every module, for one run."""
        view = copy.copy(self)
        view.meter = meter
        return view

    def set_resolution(self, height: int, width: int | None = None) -> None:
        """Generate at ``height`` x ``width`` pixels instead of the model's default size."""
        width = width or height
        multiple = self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)
        if height % multiple or width % multiple or min(height, width) <= 0:
            raise ValueError(f"the resolution must be a positive multiple of {multiple} pixels for this model")
        self.height, self.width = int(height), int(width)

    # ------------------------------------------------------------------ text
    @property
    def filler_token_id(self) -> int:
        """The token an empty candidate occupies in the relaxed prompt (the pad token)."""
        return self.pad_token_id

    def token_ids(self, texts: Sequence[str]) -> Tensor:
        return self.tokenizer(
            list(texts), padding="max_length", max_length=self.max_length, truncation=True, return_tensors="pt"
        ).input_ids.to(self.device)

    def word_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without start/end tokens."""
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    #: True when the pipeline conditions on zeros, not on an encoded "", when there is no negative prompt
    zeros_for_empty_negative: bool = False

    @property
    def pad_token_id(self) -> int:
        """The token that pads a prompt to the encoder's length."""
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    @property
    def embedding_matrix(self) -> Tensor:
        return self.text_encoder.get_input_embeddings().weight

    @staticmethod
    @contextmanager
    def mixed_embeddings(encoder, mixture: TokenMixture | None):
        """Inside the block, ``encoder``'s input embeddings at the mixture's positions are the mixture."""
        if mixture is None or mixture.positions.numel() == 0:
            yield
            return
        embedding = encoder.get_input_embeddings()
        mixed = mixture.embeddings(embedding.weight)
        positions = mixture.positions

        owner = threading.get_ident()  # an engine may serve several runs at once: only this thread's call mixes

        def hook(module, inputs, output):
            if threading.get_ident() != owner:
                return output
            out = output.clone()
            out[:, positions, :] = mixed.to(out.dtype).expand(out.shape[0], -1, -1)
            return out

        handle = embedding.register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()

    def encode_ids(self, ids: Tensor, mixture: TokenMixture | None = None) -> Conditioning:
        """Encode token ids; a ``mixture``, if given, replaces the token embeddings at its positions.

        The mixture goes *through* the text encoder (the authors' release skipped it).
        """
        with self.mixed_embeddings(self.text_encoder, mixture):
            hidden = self.text_encoder(ids.to(self.device))[0]
        return Conditioning(hidden.to(self.dtype))

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Conditioning:
        return self.encode_ids(self.token_ids(texts))

    # ------------------------------------------------------------- sampling
    def _make_scheduler(self, steps: int | None = None):
        scheduler = self.scheduler_class.from_config(copy.deepcopy(dict(self.scheduler_config)))
        if steps is not None:
            scheduler.set_timesteps(steps, device=self.device)
        return scheduler

    def make_scheduler(self, steps: int):
        """A fresh copy of the pipeline's scheduler, set to ``steps`` (schedulers keep state)."""
        return self._make_scheduler(steps)

    def timestep_count(self, steps: int) -> int:
        """denoiser calls the scheduler makes for ``steps`` steps (PNDM makes one more)."""
        return len(self.make_scheduler(steps).timesteps)

    @staticmethod
    def step_generators(seeds: Sequence[int]) -> list[torch.Generator]:
        """Per-row generators for stochastic schedulers (ancestral, SDE, DDPM), apart from x_T's stream."""
        return [torch.Generator().manual_seed((int(s) * 1_000_003 + 7_919) % 2**63) for s in seeds]

    def initial_latents(self, seeds: Sequence[int]) -> Tensor:
        """x_T for each seed, drawn on the CPU so a seed gives the same noise on every device."""
        shape = (self.unet.config.in_channels, self.height // self.vae_scale_factor, self.width // self.vae_scale_factor)
        noise = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        return torch.stack(noise).to(self.device, self.dtype)

    def unet_kwargs(self, cond: Conditioning) -> dict:
        return {"encoder_hidden_states": cond.embeds}

    def _unet(self, x: Tensor, t: Tensor, cond: Conditioning) -> Tensor:
        self.meter.add_forward(x.shape[0])
        return self.unet(x, t, **self.unet_kwargs(cond)).sample

    def model_output(
        self, x_in: Tensor, t: Tensor, cond: Conditioning, uncond: Conditioning | None, guidance: float
    ) -> Tensor:
        """The guided model output at ``t`` for an already scaled model input."""
        if uncond is None or guidance <= 1.0:
            return self._unet(x_in, t, cond)
        out = self._unet(torch.cat([x_in, x_in]), t, Conditioning.cat([uncond, cond]))
        out_u, out_c = out.chunk(2)
        return out_u + guidance * (out_c - out_u)

    @torch.no_grad()
    def sample(
        self,
        latents: Tensor,
        scheduler,
        cond: Conditioning,
        uncond: Conditioning | None,
        guidance: float,
        start: int = 0,
        stop: int | None = None,
        generators: list[torch.Generator] | None = None,
    ) -> Tensor:
        """Run the pipeline's scheduler over timesteps[start:stop] without gradients.

        ``generators`` (one per row) seed the noise of stochastic schedulers, so a seed gives
        the same image whatever else is in the batch.
        """
        extra = {}
        if generators is not None and "generator" in inspect.signature(scheduler.step).parameters:
            extra["generator"] = generators
        for t in scheduler.timesteps[start:stop]:
            x_in = scheduler.scale_model_input(latents, t)
            out = self.model_output(x_in, t, cond, uncond, guidance)
            latents = scheduler.step(out, t, latents, **extra).prev_sample
        return latents

    def alpha_bar(self, t: Tensor | float) -> Tensor:
        return self.alphas_cumprod[int(round(float(t)))]

    def x0_and_eps(self, out: Tensor, x_t: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor]:
        """Closed-form x0 and noise estimate from a model output at ``t`` (variance-preserving x_t)."""
        a = self.alpha_bar(t)
        sa, s1a = a.sqrt(), (1 - a).sqrt()
        out, x_t = out.float(), x_t.float()
        if self.prediction_type == "epsilon":
            eps = out
            x0 = (x_t - s1a * eps) / sa
        elif self.prediction_type == "v_prediction":
            x0 = sa * x_t - s1a * out
            eps = sa * out + s1a * x_t
        elif self.prediction_type == "sample":
            x0 = out
            eps = (x_t - sa * x0) / s1a
        else:
            raise ValueError(f"unsupported prediction_type {self.prediction_type!r}")
        return x0, eps

    def ddim_step(self, x0: Tensor, eps: Tensor, t_next: Tensor | float | None) -> Tensor:
        """Deterministic DDIM move to ``t_next`` (None: to the clean sample)."""
        if t_next is None:
            return x0
        a = self.alpha_bar(t_next)
        return a.sqrt() * x0 + (1 - a).sqrt() * eps

    def decode(self, latents: Tensor) -> Tensor:
        """Latent x0 to [0, 1] images; keeps gradients if the caller does. Counted on the meter."""
        self.meter.add_decode(latents.shape[0])
        config = self.vae.config
        latents = latents.to(self.vae.dtype)
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:  # VAEs that normalise latents per channel
            shape = (1, len(mean), 1, 1)
            mean = torch.tensor(mean, device=latents.device, dtype=latents.dtype).view(shape)
            std = torch.tensor(std, device=latents.device, dtype=latents.dtype).view(shape)
            latents = latents * std / config.scaling_factor + mean
        else:
            latents = latents / config.scaling_factor
        image = self.vae.decode(latents).sample
        return (image.float() / 2 + 0.5).clamp(0, 1)

    @torch.no_grad()
    def generate(
        self,
        cond: Conditioning,
        uncond: Conditioning | None,
        seeds: Sequence[int],
        steps: int,
        guidance: float,
    ) -> Tensor:
        """Images for ``len(cond)`` prompts x ``len(seeds)`` seeds (prompt-major), in [0, 1]."""
        n = len(cond)
        latents = self.initial_latents(seeds)
        latents = latents.repeat(n, *[1] * (latents.dim() - 1))  # (B, C, H, W), or FLUX's packed (B, L, D)
        scheduler = self.make_scheduler(steps)
        latents = latents * scheduler.init_noise_sigma
        cond = cond.repeat(len(seeds))
        uncond = uncond.repeat(len(seeds)) if uncond is not None else None
        latents = self.sample(
            latents, scheduler, cond, uncond, guidance, generators=self.step_generators(list(seeds) * n)
        )
        return torch.cat([self.decode(chunk) for chunk in latents.split(8)])


Adapter = StableDiffusionModel


def build(cfg: dict, scheduler, seeded) -> object:
    """A ``StableDiffusionPipeline`` from a preset's component configs (``models/architectures.py``),
    each component drawn with its own seed (``seeded(seed, build)``)."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from ..models.clip_bpe import clip_tokenizer

    seed = cfg["seed"]
    unet = seeded(seed, lambda: UNet2DConditionModel(**cfg["unet"]))
    vae = seeded(seed + 1, lambda: AutoencoderKL(**cfg["vae"]))
    text_config = CLIPTextConfig(**cfg["text_encoder"])
    text_encoder = seeded(seed + 2, lambda: CLIPTextModel(text_config))
    return StableDiffusionPipeline(
        vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=clip_tokenizer(), unet=unet.eval(),
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
