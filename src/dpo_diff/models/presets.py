"""Built-in model presets: complete pipelines built from the configs in ``architectures.py``.

:func:`build_preset_pipeline` is the one factory: it reads a preset's family and hands the
configs to that family's builder (:mod:`dpo_diff.pipelines`). Weights are random but seeded, so
a preset is the same on every machine, and nothing is read from disk or network except the CLIP
BPE vocabulary that ships with dpo-diff.
"""

from __future__ import annotations

from typing import Any

import torch
import diffusers
from transformers import CLIPConfig, CLIPModel

from ..pipelines import get_family
from .architectures import ARCHITECTURES
from .architectures_flow import FLOW_RUN_DEFAULTS

PRESETS: dict[str, dict[str, Any]] = ARCHITECTURES  # every architecture is a preset of the same name

# Run settings a preset asks for instead of the usual ones: a few-step model in the manner of
# SDXL-Turbo runs 1 step without guidance.
RUN_DEFAULTS: dict[str, dict[str, Any]] = {
    "tiny-sdxl-turbo": {"steps": 1, "guidance": 0.0},
    **FLOW_RUN_DEFAULTS,
}


def preset_defaults(name: str) -> dict[str, Any]:
    """Run settings a preset asks for instead of the usual ones (few-step: steps, guidance); {} otherwise."""
    return dict(RUN_DEFAULTS.get(name, {}))


def seeded(seed: int, build):
    """``build()`` with torch's global generator seeded, leaving the caller's random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_preset_pipeline(name: str, prediction_type: str | None = None, device: torch.device | str = "cpu"):
    """The preset's pipeline (its family's diffusers pipeline), seeded random weights.

    Small presets are drawn on the CPU, so they are the same on every machine; the
    published-size ones (``build_on_device``) are drawn on ``device``, where it is fast.
    """
    cfg = PRESETS[name]
    sched_cfg = dict(cfg["scheduler"])
    scheduler_class = getattr(diffusers, sched_cfg.pop("class", "DDIMScheduler"))
    if prediction_type is not None:
        sched_cfg["prediction_type"] = prediction_type
    scheduler = scheduler_class(**sched_cfg)  # on the CPU, as a loaded pipeline's
    with torch.device(device if cfg.get("build_on_device") else "cpu"):
        pipe = get_family(cfg.get("family", "sd")).build(cfg, scheduler, seeded)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_preset_scorer(name: str, seed_offset: int = 0) -> tuple[CLIPModel, dict[str, Any]]:
    """The preset's CLIP scorer (its own seed, moved by ``seed_offset`` for a stand-in of
    another CLIP-architecture scorer) and its image preprocessing settings."""
    cfg = PRESETS[name]["scorer"]
    if isinstance(cfg, str):  # another preset's scorer
        return build_preset_scorer(cfg, seed_offset)
    config = CLIPConfig(
        text_config=cfg["text_config"],
        vision_config=cfg["vision_config"],
        projection_dim=cfg["projection_dim"],
    )
    model = seeded(cfg["seed"] + seed_offset, lambda: CLIPModel(config)).eval()
    preprocess = {
        "image_size": cfg["vision_config"]["image_size"],
        "mean": (0.48145466, 0.4578275, 0.40821073),
        "std": (0.26862954, 0.26130258, 0.27577711),
    }
    return model, preprocess
