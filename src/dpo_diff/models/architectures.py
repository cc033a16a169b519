"""Architectures of the built-in presets, as data: one dict of component configs per preset.

In the spirit of open_clip's model configs: a preset is a family (which pipeline adapter builds
it, see :mod:`dpo_diff.pipelines`), a seed, and the config of each component. Run defaults
(steps, guidance) are not here: see ``RUN_DEFAULTS`` in :mod:`dpo_diff.models.presets`.
Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

from .architectures_flow import FLOW_ARCHITECTURES
from .clip_bpe import VOCAB_SIZE

_CLIP_TOKENS = {"vocab_size": VOCAB_SIZE, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407}

# diffusers' get_dummy_components() sizes: 32x32 images, 16x16x4 latents
_TINY_VAE = {
    "block_out_channels": (16, 32),
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
    "latent_channels": 4,
    "norm_num_groups": 8,
    "sample_size": 32,
}
_TINY_UNET = {
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
}
_TINY_TEXT = {
    **_CLIP_TOKENS,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_attention_heads": 4,
    "num_hidden_layers": 4,
    "max_position_embeddings": 77,
    "layer_norm_eps": 1e-5,
}

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # Mirrors diffusers' own get_dummy_components() for StableDiffusionPipeline, with the real
    # tokenizer's vocabulary. 32x32 images, 16x16x4 latents.
    "tiny": {
        "seed": 0,
        "unet": {
            **_TINY_UNET,
            "cross_attention_dim": 32,
            "attention_head_dim": 8,
            "norm_num_groups": 8,
        },
        "vae": _TINY_VAE,
        "text_encoder": _TINY_TEXT,
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
    # Mirrors diffusers' own get_dummy_components() for StableDiffusionXLPipeline: two text
    # encoders (32 + 32 = 64 cross-attention features), a 32-dim pooled embedding, the
    # "text_time" added conditioning (6 time ids x 8 + 32 = 80), Euler "leading" as in SDXL base.
    "tiny-sdxl": {
        "family": "sdxl",
        "seed": 10,
        "unet": {
            **_TINY_UNET,
            "attention_head_dim": (2, 4),
            "use_linear_projection": True,
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 8,
            "transformer_layers_per_block": (1, 2),
            "projection_class_embeddings_input_dim": 80,
            "cross_attention_dim": 64,
            "norm_num_groups": 1,
        },
        "vae": {**_TINY_VAE, "scaling_factor": 0.13025},
        "text_encoder": {**_TINY_TEXT, "num_hidden_layers": 5, "hidden_act": "gelu", "projection_dim": 32},
        "scheduler": {
            "class": "EulerDiscreteScheduler",
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "steps_offset": 1,
            "timestep_spacing": "leading",
            "prediction_type": "epsilon",
        },
        "scorer": "tiny",  # the tiny preset's CLIP scorer
    },
}

# A few-step model in the manner of SDXL-Turbo: the tiny SDXL architecture, Euler ancestral
# with "trailing" spacing, and the defaults such models are run with (1 step, no guidance).
ARCHITECTURES["tiny-sdxl-turbo"] = {
    **ARCHITECTURES["tiny-sdxl"],
    "scheduler": {
        "class": "EulerAncestralDiscreteScheduler",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "steps_offset": 1,
        "timestep_spacing": "trailing",
        "prediction_type": "epsilon",
    },
}


# Published architectures with seeded random weights, for cost benchmarks: memory and time do
# not depend on the weights, so no download is needed. Configs as in the released
# model_index / config.json files of SD 1.5 and SDXL base 1.0 (text encoders: CLIP ViT-L/14;
# SDXL's second: OpenCLIP ViT-bigG/14); scorer: CLIP ViT-B/32, dpo-diff's default scorer.
_SD_SCHEDULER = {
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "clip_sample": False,
    "set_alpha_to_one": False, "steps_offset": 1, "prediction_type": "epsilon",
}
_SD_VAE = {
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "latent_channels": 4,
    "in_channels": 3,
    "out_channels": 3,
    "norm_num_groups": 32,
    "sample_size": 512,
}
_CLIP_L = {
    **_CLIP_TOKENS, "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
    "num_hidden_layers": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768,
}
_CLIP_B32_SCORER = {
    "seed": 7,
    "projection_dim": 512,
    "text_config": {**_CLIP_TOKENS, "hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8,
                    "num_hidden_layers": 12, "max_position_embeddings": 77},
    "vision_config": {"image_size": 224, "patch_size": 32, "hidden_size": 768, "intermediate_size": 3072,
                      "num_attention_heads": 12, "num_hidden_layers": 12},
}
ARCHITECTURES["sd15-random"] = {
    "seed": 100,
    "build_on_device": True,
    "unet": {
        "block_out_channels": (320, 640, 1280, 1280),
        "layers_per_block": 2,
        "sample_size": 64,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        "cross_attention_dim": 768,
        "attention_head_dim": 8,
    },
    "vae": _SD_VAE,
    "text_encoder": _CLIP_L,
    "scheduler": _SD_SCHEDULER,
    "scorer": _CLIP_B32_SCORER,
}
ARCHITECTURES["sdxl-random"] = {
    "family": "sdxl",
    "seed": 200,
    "build_on_device": True,
    "unet": {
        "block_out_channels": (320, 640, 1280),
        "layers_per_block": 2,
        "sample_size": 128,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "transformer_layers_per_block": (1, 2, 10),
        "attention_head_dim": (5, 10, 20),
        "use_linear_projection": True,
        "cross_attention_dim": 2048,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816,
    },
    "vae": {**_SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
    "text_encoder": {**_CLIP_L, "hidden_act": "quick_gelu"},
    "text_encoder_2": {
        **_CLIP_TOKENS, "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20,
        "num_hidden_layers": 32, "max_position_embeddings": 77, "hidden_act": "gelu", "projection_dim": 1280,
    },
    "scheduler": {**{k: v for k, v in _SD_SCHEDULER.items() if k not in ("clip_sample", "set_alpha_to_one")},
                  "class": "EulerDiscreteScheduler", "timestep_spacing": "leading"},
    "scorer": _CLIP_B32_SCORER,
}

# SD3 / SD3.5 and FLUX.1 (transformer denoisers, flow matching): see architectures_flow.py
ARCHITECTURES.update({name: {"scorer": _CLIP_B32_SCORER, **cfg} for name, cfg in FLOW_ARCHITECTURES.items()})
