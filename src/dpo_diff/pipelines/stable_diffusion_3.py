"""The adapter for ``StableDiffusion3Pipeline`` (SD3, SD3.5 medium / large / large turbo).

What the pipeline does with a prompt, and what we do with a relaxed one:

- **Three encoders.** CLIP-L and CLIP-G (both CLIP BPE, the second pads with ``!`` as in
  SDXL) give their penultimate hidden states, side by side and zero-padded to T5's width;
  T5-XXL's last hidden state follows them along the sequence: (B, 77 + 256, 4096). The
  relaxed word goes through all three: CLIP-L and CLIP-G mix their own tables at the CLIP
  layout's positions (as for SDXL; both tokenizers must share one vocabulary), and T5 mixes
  its table at the T5 layout's positions (:mod:`dpo_diff.relaxation.t5`).
- **Pooled.** CLIP-L's and CLIP-G's projected end-of-text states, concatenated (B, 2048).
- **Negative prompt.** The pipeline encodes ``""`` when none is given (no zeros as in SDXL), and
  guides with ``uncond + g (cond - uncond)``: exactly our :meth:`model_output`.
- **A pipeline without T5** (``text_encoder_3=None``) conditions on zeros in T5's place; so do we.
- **Sampler.** ``FlowMatchEulerDiscreteScheduler`` (shift 3.0), with the resolution-dependent
  shift when the scheduler asks for it, as in the pipeline; latents are decoded as
  ``x / scaling_factor + shift_factor``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cost import CostMeter
from ..errors import ModelNotFoundError
from .flow_matching import FlowMatchingModel, build_vae_and_t5
from .conditioning import Conditioning, TokenMixture
from .stable_diffusion_xl import StableDiffusionXLModel


def calculate_shift(seq_len: int, config, max_shift_default: float = 1.16) -> float:
    """diffusers' resolution-dependent shift mu (linear in the image's token count)."""
    base_len, max_len = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    base_shift, max_shift = config.get("base_shift", 0.5), config.get("max_shift", max_shift_default)
    m = (max_shift - base_shift) / (max_len - base_len)
    return seq_len * m + base_shift - m * base_len


class StableDiffusion3Model(FlowMatchingModel):
    """The generator side of DPO-Diff for a ``StableDiffusion3Pipeline``."""

    #: what dpo-diff runs by default: the pipeline's own defaults
    run_defaults = {"steps": 28, "guidance": 7.0}

    # CLIP-G's padding and the filler token: as in SDXL's second encoder
    pad_token_id_2 = StableDiffusionXLModel.pad_token_id_2
    filler_token_id = StableDiffusionXLModel.filler_token_id
    _second_ids = StableDiffusionXLModel._second_ids

    def __init__(self, pipe, name: str = "model", meter: CostMeter | None = None):
        super().__init__(pipe, name, meter)
        if pipe.text_encoder is None or pipe.text_encoder_2 is None:
            raise ModelNotFoundError(f"'{name}': dpo-diff needs both CLIP text encoders of an SD3 pipeline")
        self.text_encoder = pipe.text_encoder.requires_grad_(False)
        self.text_encoder_2 = pipe.text_encoder_2.requires_grad_(False)
        self.tokenizer, self.tokenizer_2 = pipe.tokenizer, pipe.tokenizer_2
        self.t5_encoder = pipe.text_encoder_3.requires_grad_(False) if pipe.text_encoder_3 is not None else None
        self.t5_tokenizer = pipe.tokenizer_3
        if self.tokenizer.get_vocab() != self.tokenizer_2.get_vocab():
            raise ModelNotFoundError(
                f"'{name}': the two CLIP tokenizers have different vocabularies; dpo-diff relaxes one token "
                "per word in both CLIP encoders and needs them to agree"
            )
        self.max_length = int(pipe.tokenizer_max_length)
        self.patch_size = int(self.transformer.config.patch_size)
        self.height = self.width = int(self.transformer.config.sample_size) * self.vae_scale_factor

    def set_resolution(self, height: int, width: int | None = None) -> None:
        width = width or height
        multiple = self.vae_scale_factor * self.patch_size
        if height % multiple or width % multiple or min(height, width) <= 0:
            raise ValueError(f"the resolution must be a positive multiple of {multiple} pixels for this model")
        self.height, self.width = int(height), int(width)

    # ------------------------------------------------------------------ text
    def encode_ids(self, ids: Tensor, mixture: TokenMixture | None = None, second=None) -> Conditioning:
        """CLIP-L | CLIP-G (padded to T5's width), then T5, along the sequence; pooled: CLIP-L | CLIP-G."""
        ids = ids.to(self.device)
        with self.mixed_embeddings(self.text_encoder, mixture):
            out_1 = self.text_encoder(ids, output_hidden_states=True)
        with self.mixed_embeddings(self.text_encoder_2, mixture):
            out_2 = self.text_encoder_2(self._second_ids(ids), output_hidden_states=True)
        dtype = self.text_encoder.dtype
        clip = torch.cat([out_1.hidden_states[-2].to(dtype), out_2.hidden_states[-2].to(dtype)], dim=-1)
        if self.t5_encoder is None:
            t5 = torch.zeros(ids.shape[0], self.t5_max_length, self.transformer.config.joint_attention_dim,
                             device=self.device, dtype=dtype)
        else:
            if second is None:
                raise ValueError("SD3 needs the T5 ids of the prompt beside the CLIP ids")
            t5_ids, t5_mixture = second
            t5 = self.encode_t5(t5_ids.expand(ids.shape[0], -1), t5_mixture)
        clip = F.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
        embeds = torch.cat([clip, t5], dim=-2)
        pooled = torch.cat([out_1[0], out_2[0]], dim=-1)
        return Conditioning(embeds.to(self.dtype), pooled.to(self.dtype))

    # ------------------------------------------------------------- sampling
    def scheduler_kwargs(self, steps: int) -> dict:
        if not self.scheduler_config.get("use_dynamic_shifting", None):
            return {}
        h, w = self.height // self.vae_scale_factor, self.width // self.vae_scale_factor
        return {"mu": calculate_shift((h // self.patch_size) * (w // self.patch_size), self.scheduler_config)}

    def unet_kwargs(self, cond: Conditioning) -> dict:
        if cond.pooled is None:
            raise ValueError("SD3 conditioning needs the pooled embedding")
        return {"encoder_hidden_states": cond.embeds, "pooled_projections": cond.pooled}

    def _unet(self, x: Tensor, t: Tensor, cond: Conditioning) -> Tensor:
        self.meter.add_forward(x.shape[0])
        t = torch.as_tensor(t, device=x.device)
        return self.transformer(hidden_states=x, timestep=t.expand(x.shape[0]), **self.unet_kwargs(cond),
                                return_dict=False)[0]


Adapter = StableDiffusion3Model


def build(cfg: dict, scheduler, seeded):
    """A ``StableDiffusion3Pipeline`` from a preset's configs (``models/architectures_flow.py``), seeded."""
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from ..models.clip_bpe import clip_tokenizer
    from ..models.t5_tokenizer import t5_tokenizer

    seed = cfg["seed"]
    vae, t5 = build_vae_and_t5(cfg, seeded)
    transformer = seeded(seed, lambda: SD3Transformer2DModel(**cfg["transformer"])).eval()
    config_1, config_2 = CLIPTextConfig(**cfg["text_encoder"]), CLIPTextConfig(**cfg["text_encoder_2"])
    text_encoder = seeded(seed + 2, lambda: CLIPTextModelWithProjection(config_1)).eval()
    text_encoder_2 = seeded(seed + 3, lambda: CLIPTextModelWithProjection(config_2)).eval()
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=scheduler, vae=vae,
        text_encoder=text_encoder, tokenizer=clip_tokenizer(),
        text_encoder_2=text_encoder_2, tokenizer_2=clip_tokenizer(pad_token="!"),  # CLIP-G pads with "!"
        text_encoder_3=t5, tokenizer_3=t5_tokenizer(),
    )
