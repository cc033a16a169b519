"""Architectures of the transformer / flow-matching presets, as data: SD3 / SD3.5 and FLUX.1.

Merged into ``ARCHITECTURES`` (:mod:`dpo_diff.models.architectures`); built by their families'
``build`` (``pipelines/stable_diffusion_3.py``, ``pipelines/flux.py``). Seeded random weights;
the CLIP encoders use the real CLIP BPE tokenizer and T5 the small offline SentencePiece-style
tokenizer of :mod:`dpo_diff.models.t5_tokenizer` (tiny presets) or T5-XXL's architecture
 (published-size presets, for cost benchmarks: memory and time do not depend on the weights;
T5-XXL's table gets the small tokenizer's 34 003 rows instead of 32 128, 15 MB more in fp16).
"""

from __future__ import annotations

from typing import Any

_CLIP_TOKENS = {"vocab_size": 49408, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407}
_TINY_CLIP = {
    **_CLIP_TOKENS, "hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 3,
    "max_position_embeddings": 77, "layer_norm_eps": 1e-5, "hidden_act": "gelu", "projection_dim": 32,
}
_TINY_T5 = {
    "d_model": 64, "d_kv": 16, "d_ff": 96, "num_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 8,
    "feed_forward_proj": "gated-gelu", "dropout_rate": 0.0, "pad_token_id": 0, "eos_token_id": 1,
}
# 32x32 images, 16x16 latents, as in the SD tiny presets
_TINY_FLOW_VAE = {
    "block_out_channels": (16, 32), "in_channels": 3, "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 2, "up_block_types": ("UpDecoderBlock2D",) * 2,
    "latent_channels": 4, "norm_num_groups": 8, "sample_size": 32, "use_quant_conv": False,
    "use_post_quant_conv": False, "scaling_factor": 1.5305, "shift_factor": 0.0609,
}
# published sizes (SD3.5 medium / FLUX.1 VAEs: 16 latent channels, no quant convs)
_FLOW_VAE = {
    "block_out_channels": (128, 256, 512, 512), "in_channels": 3, "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2, "latent_channels": 16, "norm_num_groups": 32, "sample_size": 1024,
    "use_quant_conv": False, "use_post_quant_conv": False,
}
_CLIP_L = {
    **_CLIP_TOKENS, "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
    "num_hidden_layers": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768,
}
_CLIP_G = {
    **_CLIP_TOKENS, "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20,
    "num_hidden_layers": 32, "max_position_embeddings": 77, "hidden_act": "gelu", "projection_dim": 1280,
}
_T5_XXL = {
    "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
    "relative_attention_num_buckets": 32, "feed_forward_proj": "gated-gelu", "dropout_rate": 0.0,
    "pad_token_id": 0, "eos_token_id": 1,
}

FLOW_ARCHITECTURES: dict[str, dict[str, Any]] = {
    # SD3.5-style: CLIP-L + CLIP-G (32 + 32 features, pooled 32 + 32) and T5 (64), an MMDiT with
    # SD3.5's qk RMS-norm and a dual-attention block, 2x2 patches of 16x16x4 latents.
    "tiny-sd3": {
        "family": "sd3",
        "seed": 30,
        "transformer": {
            "sample_size": 16, "patch_size": 2, "in_channels": 4, "out_channels": 4, "num_layers": 2,
            "attention_head_dim": 8, "num_attention_heads": 4, "joint_attention_dim": 64,
            "caption_projection_dim": 32, "pooled_projection_dim": 64, "pos_embed_max_size": 32,
            "qk_norm": "rms_norm", "dual_attention_layers": (0,),
        },
        "vae": _TINY_FLOW_VAE,
        "text_encoder": _TINY_CLIP,
        "text_encoder_2": {**_TINY_CLIP, "num_hidden_layers": 4},
        "t5": _TINY_T5,
        "scheduler": {"class": "FlowMatchEulerDiscreteScheduler", "shift": 3.0},
        "scorer": "tiny",
    },
    # Stable Diffusion 3.5 medium (stabilityai/stable-diffusion-3.5-medium, 2.5B MMDiT-X)
    "sd35-random": {
        "family": "sd3",
        "seed": 300,
        "build_on_device": True,
        "transformer": {
            "sample_size": 128, "patch_size": 2, "in_channels": 16, "out_channels": 16, "num_layers": 24,
            "attention_head_dim": 64, "num_attention_heads": 24, "joint_attention_dim": 4096,
            "caption_projection_dim": 1536, "pooled_projection_dim": 2048, "pos_embed_max_size": 384,
            "qk_norm": "rms_norm", "dual_attention_layers": tuple(range(13)),
        },
        "vae": {**_FLOW_VAE, "scaling_factor": 1.5305, "shift_factor": 0.0609},
        "text_encoder": _CLIP_L,
        "text_encoder_2": _CLIP_G,
        "t5": _T5_XXL,
        "scheduler": {"class": "FlowMatchEulerDiscreteScheduler", "shift": 3.0},
    },
    # FLUX.1-dev-style: CLIP-L pooled (32) and T5 (64), an MM-DiT with a guidance embedding,
    # 16x16x4 latents packed into 8x8 tokens of 16 features, 32x32 images.
    "tiny-flux": {
        "family": "flux",
        "seed": 40,
        "default_sample_size": 16,
        "transformer": {
            "patch_size": 1, "in_channels": 16, "num_layers": 1, "num_single_layers": 2, "attention_head_dim": 16,
            "num_attention_heads": 2, "joint_attention_dim": 64, "pooled_projection_dim": 32,
            "guidance_embeds": True, "axes_dims_rope": (4, 6, 6),
        },
        "vae": {**_TINY_FLOW_VAE, "scaling_factor": 0.3611, "shift_factor": 0.1159},
        "text_encoder": _TINY_CLIP,
        "t5": _TINY_T5,
        "scheduler": {"class": "FlowMatchEulerDiscreteScheduler", "shift": 3.0, "use_dynamic_shifting": True,
                      "base_image_seq_len": 256, "max_image_seq_len": 4096, "base_shift": 0.5, "max_shift": 1.15},
        "scorer": "tiny",
    },
    # FLUX.1 schnell (black-forest-labs/FLUX.1-schnell, 12B; dev differs by its guidance embedding)
    "flux-random": {
        "family": "flux",
        "seed": 400,
        "build_on_device": True,
        "default_sample_size": 128,
        "transformer": {
            "patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38, "attention_head_dim": 128,
            "num_attention_heads": 24, "joint_attention_dim": 4096, "pooled_projection_dim": 768,
            "guidance_embeds": False, "axes_dims_rope": (16, 56, 56),
        },
        "vae": {**_FLOW_VAE, "scaling_factor": 0.3611, "shift_factor": 0.1159},
        "text_encoder": _CLIP_L,
        "t5": _T5_XXL,
        "scheduler": {"class": "FlowMatchEulerDiscreteScheduler", "shift": 1.0, "use_dynamic_shifting": False,
                      "base_image_seq_len": 256, "max_image_seq_len": 4096, "base_shift": 0.5, "max_shift": 1.15},
    },
}

# Run settings of these presets (see RUN_DEFAULTS in presets.py): SD3.5 medium's model card, and
# few-step FLUX.1 schnell without true CFG.
FLOW_RUN_DEFAULTS: dict[str, dict[str, Any]] = {
    "sd35-random": {"steps": 40, "guidance": 4.5},
    "tiny-flux": {"steps": 4, "guidance": 1.0},
    "flux-random": {"steps": 4, "guidance": 1.0},
}
