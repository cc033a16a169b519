"""What SD3 / SD3.5 and FLUX.1 share: a transformer denoiser trained with flow matching, and a
T5 encoder beside CLIP.

**Flow matching.** x_t = (1 - s) x0 + s eps at noise level s = t / 1000 (the scheduler's
timesteps are its sigmas x num_train_timesteps); the model predicts the velocity
v = eps - x0, so x0 = x_t - s v and eps = x_t + (1 - s) v. The estimators only ever call
:meth:`x0_and_eps` and :meth:`ddim_step`, so they run unchanged: the deterministic move
(1 - s') x0 + s' eps to the next level is exactly the flow-matching Euler step
x_t + (s' - s) v, and the shortcut's grad step(s) are taken at the s of t_i. The scheduler
(``FlowMatchEulerDiscreteScheduler``) is the pipeline's own; flow schedulers have no
``scale_model_input`` or ``init_noise_sigma`` (the input is not scaled, x_T is plain noise),
so the copies we hand out get the identity and 1.0.

**T5 beside CLIP.** The relaxed word goes through every encoder. CLIP's layout is the one
:mod:`dpo_diff.relaxation` builds; T5 gets its own (:mod:`dpo_diff.relaxation.t5`), because
its SentencePiece pieces are not CLIP's BPE tokens.

Every transformer call is counted on the meter as one denoiser pass.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor

from ..cost import CostMeter
from .conditioning import Conditioning, TokenMixture
from .stable_diffusion import StableDiffusionModel

_FLOW_CLASSES: dict[type, type] = {}


def _flow_scheduler_class(cls: type) -> type:
    """``cls`` with an identity ``scale_model_input`` and ``init_noise_sigma`` = 1 (what flow models mean)."""
    if cls not in _FLOW_CLASSES:

        def scale_model_input(self, sample, timestep=None):
            return sample

        _FLOW_CLASSES[cls] = type(cls.__name__, (cls,), {"scale_model_input": scale_model_input,
                                                          "init_noise_sigma": 1.0})
    return _FLOW_CLASSES[cls]


class FlowMatchingModel(StableDiffusionModel):
    """Common ground of the SD3 and FLUX adapters (not used on its own).

    ``self.unet`` is the transformer (the name the cost meter and the benchmarks use).
    Subclasses set the text encoders and implement :meth:`encode_ids`, :meth:`unet_kwargs`,
    :meth:`_unet` and the latent layout.
    """

    prediction_type = "flow"
    #: the pipeline's default ``max_sequence_length`` for T5
    t5_max_length: int = 256

    def __init__(self, pipe, name: str = "model", meter: CostMeter | None = None):
        self.pipe = pipe
        self.name = name
        self.unet = self.transformer = pipe.transformer.requires_grad_(False)
        self.vae = pipe.vae.requires_grad_(False)
        self.scheduler_config = pipe.scheduler.config
        self.scheduler_class = type(pipe.scheduler)
        self.meter = meter or CostMeter()
        self.device = self.transformer.device
        self.dtype = self.transformer.dtype
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.num_train_timesteps = int(self.scheduler_config.get("num_train_timesteps", 1000))

    # ------------------------------------------------------------------ text
    def t5_token_ids(self, texts: Sequence[str]) -> Tensor:
        """T5 ids as the pipeline makes them: ``</s>`` appended, padded to ``t5_max_length``."""
        return self.t5_tokenizer(
            list(texts), padding="max_length", max_length=self.t5_max_length, truncation=True,
            add_special_tokens=True, return_tensors="pt",
        ).input_ids.to(self.device)

    def t5_piece_ids(self, text: str) -> list[int]:
        """T5 ids of a whole prompt with ``</s>``, unpadded and uncut (for layouts)."""
        return list(self.t5_tokenizer(text, add_special_tokens=True).input_ids)

    def encode_t5(self, ids: Tensor, mixture: TokenMixture | None = None) -> Tensor:
        """T5's last hidden state; a ``mixture`` replaces the piece embeddings at its positions."""
        with self.mixed_embeddings(self.t5_encoder.encoder, mixture):  # the stack's own embedding module
            hidden = self.t5_encoder(ids.to(self.device))[0]
        return hidden.to(self.t5_encoder.dtype)

    def second_vocabulary(self, tspace, words: Tensor, present: tuple[bool, ...], negative: bool):
        """(T5 ids (1, L), T5 mixture) for a relaxed layout, or None without a T5 encoder."""
        if self.t5_encoder is None:
            return None
        from ..relaxation.t5 import t5_layout

        return t5_layout(self, tspace, words, present, negative)

    def encode_ids(self, ids: Tensor, mixture: TokenMixture | None = None, second=None) -> Conditioning:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Conditioning:
        second = (self.t5_token_ids(texts), None) if self.t5_encoder is not None else None
        return self.encode_ids(self.token_ids(texts), None, second)

    # ------------------------------------------------------------- sampling
    def scheduler_kwargs(self, steps: int) -> dict:
        """Extra arguments of ``set_timesteps`` (sigmas, the resolution-dependent shift mu)."""
        return {}

    def _make_scheduler(self, steps: int | None = None):
        cls = _flow_scheduler_class(self.scheduler_class)
        scheduler = cls.from_config(copy.deepcopy(dict(self.scheduler_config)))
        if steps is not None:
            scheduler.set_timesteps(steps, device=self.device, **self.scheduler_kwargs(steps))
        return scheduler

    def sigma(self, t: Tensor | float) -> Tensor:
        return torch.as_tensor(t, dtype=torch.float32, device=self.device) / self.num_train_timesteps

    def x0_and_eps(self, out: Tensor, x_t: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor]:
        """x0 = x_t - s v and eps = x_t + (1 - s) v from the predicted velocity v at level s = t / 1000."""
        s = self.sigma(t)
        out, x_t = out.float(), x_t.float()
        return x_t - s * out, x_t + (1 - s) * out

    def ddim_step(self, x0: Tensor, eps: Tensor, t_next: Tensor | float | None) -> Tensor:
        """The deterministic move to level ``t_next`` (None: to the clean sample): the flow Euler step."""
        if t_next is None:
            return x0
        s = self.sigma(t_next)
        return (1 - s) * x0 + s * eps

    def alpha_bar(self, t):  # not a variance-preserving model
        raise NotImplementedError("flow-matching models have no alpha_bar; use sigma()")

    def _vae_latents(self, latents: Tensor) -> Tensor:
        """Our latents as the VAE reads them (FLUX unpacks)."""
        return latents

    def decode(self, latents: Tensor) -> Tensor:
        """Latent x0 to [0, 1] images, with the VAE's scaling and shift; counted on the meter."""
        self.meter.add_decode(latents.shape[0])
        config = self.vae.config
        latents = self._vae_latents(latents).to(self.vae.dtype)
        latents = latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
        image = self.vae.decode(latents).sample
        return (image.float() / 2 + 0.5).clamp(0, 1)


def build_vae_and_t5(cfg: dict, seeded):
    """The VAE and the T5 encoder of an SD3 / FLUX preset (its ``vae`` and ``t5`` configs), seeded."""
    from diffusers import AutoencoderKL
    from transformers import T5Config, T5EncoderModel

    from ..models.t5_tokenizer import t5_tokenizer

    seed = cfg["seed"]
    vae = seeded(seed + 1, lambda: AutoencoderKL(**cfg["vae"])).eval()
    t5_config = T5Config(**{"vocab_size": len(t5_tokenizer()), **cfg["t5"]})
    t5 = seeded(seed + 4, lambda: T5EncoderModel(t5_config)).eval()
    return vae, t5
