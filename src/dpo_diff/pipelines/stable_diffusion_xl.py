"""The adapter for ``StableDiffusionXLPipeline`` (SDXL, SDXL-Turbo).

What differs from SD 1.x / 2.x, and what we do about it:

- **Two text encoders.** The UNet reads both encoders' penultimate hidden states side by
  side (768 + 1280 = 2048 for SDXL). A relaxed word is one :class:`TokenMixture`; each
  encoder mixes its own embedding table with the same weights, so the mixture goes through
  both encoders. This needs one token vocabulary for both tokenizers (true of every SDXL
  checkpoint: both are CLIP BPE); a pipeline whose tokenizers disagree is refused in one
  line. Only the padding differs (SDXL's second tokenizer pads with ``!``); the second
  encoder gets its own padding, so a one-hot mixture reproduces the pipeline's encoding.
- **Pooled embedding.** The second encoder's projected end-of-text state goes to the UNet
  as ``text_embeds``, for the positive and the negative prompt alike.
- **Time ids.** (original size, crop top-left, target size) = (H, W, 0, 0, H, W), as the
  pipeline uses by default.
- **Empty negative prompt.** With ``force_zeros_for_empty_prompt`` (SDXL base) the pipeline
  uses zeros when no negative prompt is given; an empty negative prompt here means the same,
  and so does a relaxed negative prompt whose sampled choice is empty (see
  :func:`dpo_diff.relaxation.encode_relaxed`), so a one-hot choice is exact here too.
- **VAE.** SDXL's VAE overflows in fp16 (``force_upcast``); it runs in fp32 then.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..cost import CostMeter
from ..errors import ModelNotFoundError
from .stable_diffusion import Conditioning, StableDiffusionModel, TokenMixture


class StableDiffusionXLModel(StableDiffusionModel):
    """The generator side of DPO-Diff for a ``StableDiffusionXLPipeline``."""

    def __init__(self, pipe, name: str = "model", meter: CostMeter | None = None):
        if pipe.text_encoder is None or pipe.tokenizer is None:
            raise ModelNotFoundError(
                f"'{name}' has no first text encoder (an SDXL refiner?); dpo-diff needs a text-to-image SDXL model"
            )
        super().__init__(pipe, name, meter)
        self.text_encoder_2 = pipe.text_encoder_2.requires_grad_(False)
        self.tokenizer_2 = pipe.tokenizer_2
        if self.tokenizer.get_vocab() != self.tokenizer_2.get_vocab():
            raise ModelNotFoundError(
                f"'{name}': the two SDXL tokenizers have different vocabularies; dpo-diff relaxes one token "
                "per word in both encoders and needs them to agree"
            )
        self.zeros_for_empty_negative = bool(pipe.config.get("force_zeros_for_empty_prompt", True))
        time_ids = self._time_ids()
        pooled_dim = int(self.text_encoder_2.config.projection_dim)
        expected = self.unet.add_embedding.linear_1.in_features
        if self.unet.config.addition_time_embed_dim * len(time_ids) + pooled_dim != expected:
            raise ModelNotFoundError(
                f"'{name}': the UNet expects {expected} added conditioning features, not SDXL's time ids plus a "
                f"{pooled_dim}-dim pooled embedding (an SDXL refiner or an inpainting model?)"
            )
        self.time_ids = torch.tensor([time_ids], device=self.device, dtype=self.dtype)
        if self.vae.dtype == torch.float16 and getattr(self.vae.config, "force_upcast", False):
            self.vae.to(torch.float32)

    def _time_ids(self) -> list[int]:
        return [self.height, self.width, 0, 0, self.height, self.width]

    def set_resolution(self, height: int, width: int | None = None) -> None:
        super().set_resolution(height, width)
        self.time_ids = torch.tensor([self._time_ids()], device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ text
    @property
    def pad_token_id_2(self) -> int:
        pad = self.tokenizer_2.pad_token_id
        return int(pad if pad is not None else self.tokenizer_2.eos_token_id)

    @property
    def filler_token_id(self) -> int:
        """The empty candidate's token: the second tokenizer's pad (``!`` in SDXL), never end-of-text.

        The second encoder pools at the first end-of-text token, so a filler must not be one.
        """
        eos = self.tokenizer.eos_token_id
        if self.pad_token_id_2 != eos:
            return self.pad_token_id_2
        return int(self.tokenizer.convert_tokens_to_ids("!"))

    def _second_ids(self, ids: Tensor) -> Tensor:
        """The first tokenizer's ids with the second tokenizer's padding after the end-of-text token."""
        if self.pad_token_id_2 == self.pad_token_id:
            return ids
        is_eos = ids == self.tokenizer.eos_token_id
        first_eos = torch.where(is_eos.any(-1), is_eos.int().argmax(-1), ids.shape[-1])
        after = torch.arange(ids.shape[-1], device=ids.device)[None] > first_eos[:, None]
        return ids.masked_fill(after, self.pad_token_id_2)

    def encode_ids(self, ids: Tensor, mixture: TokenMixture | None = None) -> Conditioning:
        """Both encoders' penultimate states side by side, and the second one's pooled embedding."""
        ids = ids.to(self.device)
        with self.mixed_embeddings(self.text_encoder, mixture):
            first = self.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        with self.mixed_embeddings(self.text_encoder_2, mixture):
            out = self.text_encoder_2(self._second_ids(ids), output_hidden_states=True)
        embeds = torch.cat([first, out.hidden_states[-2].to(first.dtype)], dim=-1)
        return Conditioning(embeds.to(self.dtype), out.text_embeds.to(self.dtype))

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Conditioning:
        cond = self.encode_ids(self.token_ids(texts))
        if self.zeros_for_empty_negative:
            empty = torch.tensor([not t.strip() for t in texts], device=self.device)
            if bool(empty.any()):
                cond = Conditioning(
                    cond.embeds.masked_fill(empty[:, None, None], 0.0), cond.pooled.masked_fill(empty[:, None], 0.0)
                )
        return cond

    # ------------------------------------------------------------------ unet
    def unet_kwargs(self, cond: Conditioning) -> dict:
        if cond.pooled is None:
            raise ValueError("SDXL conditioning needs the pooled embedding")
        batch = cond.embeds.shape[0]
        added = {"text_embeds": cond.pooled, "time_ids": self.time_ids.expand(batch, -1)}
        return {"encoder_hidden_states": cond.embeds, "added_cond_kwargs": added}


Adapter = StableDiffusionXLModel


def build(cfg: dict, scheduler, seeded) -> object:
    """A ``StableDiffusionXLPipeline`` from a preset's component configs, each drawn with its own seed."""
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from ..models.clip_bpe import clip_tokenizer

    seed = cfg["seed"]
    unet = seeded(seed, lambda: UNet2DConditionModel(**cfg["unet"]))
    vae = seeded(seed + 1, lambda: AutoencoderKL(**cfg["vae"]))
    text_config = CLIPTextConfig(**cfg["text_encoder"])
    text_encoder = seeded(seed + 2, lambda: CLIPTextModel(text_config))
    config_2 = CLIPTextConfig(**cfg.get("text_encoder_2", cfg["text_encoder"]))
    text_encoder_2 = seeded(seed + 3, lambda: CLIPTextModelWithProjection(config_2))
    return StableDiffusionXLPipeline(
        vae=vae.eval(), text_encoder=text_encoder.eval(), text_encoder_2=text_encoder_2.eval(),
        tokenizer=clip_tokenizer(), tokenizer_2=clip_tokenizer(pad_token="!"),  # SDXL's second pads with "!"
        unet=unet.eval(), scheduler=scheduler, add_watermarker=False,
    )
