"""Model loading: presets built from configs, Hub ids and local folders."""

from .clip_bpe import clip_tokenizer
from .loading import DEFAULT_SCORER, bundled_models, default_dtype, default_model, load_pipeline, load_scorer_parts, resolve_device
from .presets import PRESETS, build_preset_pipeline, build_preset_scorer, preset_defaults

__all__ = [
    "DEFAULT_SCORER",
    "PRESETS",
    "build_preset_pipeline",
    "bundled_models",
    "default_model",
    "build_preset_scorer",
    "clip_tokenizer",
    "default_dtype",
    "load_pipeline",
    "load_scorer_parts",
    "preset_defaults",
    "resolve_device",
]
