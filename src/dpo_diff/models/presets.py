"""Built-in model presets: complete SD-architecture pipelines built from configs.

Architectures are data (a dict of configs per preset, in the spirit of open_clip's model
configs); :func:`build_preset` is the one factory. Weights are random but seeded, so a
preset is the same on every machine, and nothing is read from disk or network except the
CLIP BPE vocabulary that ships with dpo-diff.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel

from .clip_bpe import VOCAB_SIZE, clip_tokenizer

_CLIP_TOKENS = {"vocab_size": VOCAB_SIZE, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407}

PRESETS: dict[str, dict[str, Any]] = {
    # Mirrors diffusers' own get_dummy_components() for StableDiffusionPipeline, with the real
    # tokenizer's vocabulary. 32x32 images, 16x16x4 latents.
    "tiny": {
        "seed": 0,
        "unet": {
            "block_out_channels": (32, 64),
            "layers_per_block": 1,
            "sample_size": 16,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
            "cross_attention_dim": 32,
            "attention_head_dim": 8,
            "norm_num_groups": 8,
        },
        "vae": {
            "block_out_channels": (16, 32),
            "in_channels": 3,
            "out_channels": 3,
            "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
            "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
            "latent_channels": 4,
            "norm_num_groups": 8,
            "sample_size": 32,
        },
        "text_encoder": {
            **_CLIP_TOKENS,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 4,
            "max_position_embeddings": 77,
            "layer_norm_eps": 1e-5,
        },
        "scheduler": {
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "clip_sample": False,
            "set_alpha_to_one": False,
            "steps_offset": 1,
            "prediction_type": "epsilon",
        },
        "scorer": {
            "seed": 1,
            "projection_dim": 32,
            "text_config": {
                **_CLIP_TOKENS,
                "hidden_size": 32,
                "intermediate_size": 37,
                "num_attention_heads": 4,
                "num_hidden_layers": 2,
                "max_position_embeddings": 77,
            },
            "vision_config": {
                "image_size": 32,
                "patch_size": 8,
                "hidden_size": 32,
                "intermediate_size": 37,
                "num_attention_heads": 4,
                "num_hidden_layers": 2,
            },
        },
    },
}


def _seeded(seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_preset_pipeline(name: str, prediction_type: str | None = None) -> StableDiffusionPipeline:
    """A StableDiffusionPipeline with the preset's architecture and seeded random weights."""
    cfg = PRESETS[name]
    seed = cfg["seed"]
    unet = _seeded(seed, lambda: UNet2DConditionModel(**cfg["unet"]))
    vae = _seeded(seed + 1, lambda: AutoencoderKL(**cfg["vae"]))
    text_encoder = _seeded(seed + 2, lambda: CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"])))
    sched_cfg = dict(cfg["scheduler"])
    if prediction_type is not None:
        sched_cfg["prediction_type"] = prediction_type
    scheduler = DDIMScheduler(**sched_cfg)
    pipe = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=clip_tokenizer(),
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_preset_scorer(name: str) -> tuple[CLIPModel, dict[str, Any]]:
    """The preset's CLIP scorer (its own seed) and its image preprocessing settings."""
    cfg = PRESETS[name]["scorer"]
    config = CLIPConfig(
        text_config=cfg["text_config"],
        vision_config=cfg["vision_config"],
        projection_dim=cfg["projection_dim"],
    )
    model = _seeded(cfg["seed"], lambda: CLIPModel(config)).eval()
    preprocess = {
        "image_size": cfg["vision_config"]["image_size"],
        "mean": (0.48145466, 0.4578275, 0.40821073),
        "std": (0.26862954, 0.26130258, 0.27577711),
    }
    return model, preprocess
