"""``Engine``: a loaded generator and its scorers, and ``load``, the one way to get one.

Load once, optimize many prompts. An engine is shared read-only: each run meters its own
cost on a view of the adapter (:meth:`Engine.metered`), so two callers can use one engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import DEFAULT_GUIDANCE
from .cost import CostMeter
from .models import DEFAULT_SCORER, PRESETS, bundled_models, default_model, load_pipeline, preset_defaults, resolve_device
from .objectives import ClipScorer, Objective, get_objective
from .pipelines import make_model
from .pipelines.stable_diffusion import StableDiffusionModel


@dataclass
class Engine:
    """A loaded generator and scorer; load once, optimize many prompts."""

    name: str
    model: StableDiffusionModel
    scorer: ClipScorer
    default_steps: int
    default_guidance: float = DEFAULT_GUIDANCE
    scorer_name: str | None = None
    _scorers: dict = field(default_factory=dict, repr=False)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def objective(self, name: str, prompt: str, scorer: str | None = None) -> Objective:
        """The objective ``name`` bound to ``prompt``; its scoring model is loaded once per engine."""
        spec = get_objective(name)
        key = (spec.name, scorer)
        if key not in self._scorers:
            self._scorers[key] = spec.load(self, scorer)
        return spec.bind(self._scorers[key], prompt)

    def metered(self, meter: CostMeter) -> StableDiffusionModel:
        """The generator, counting into ``meter``: a view sharing every weight, for one run."""
        return self.model.with_meter(meter)


def has_own_scorer(model: str) -> bool:
    """A folder with its own CLIP scorer in ``scorer/`` (what ``dpo-diff world train`` writes) is a
    complete model: that scorer and the world's 20 steps are its defaults, as for the bundled world."""
    folder = Path(model).expanduser()
    return folder.is_dir() and (folder / "scorer" / "config.json").is_file()


def load(
    model: str | None = None,
    scorer: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    checkpoint: bool = False,
) -> Engine:
    """Load a Stable Diffusion or SDXL pipeline (preset, bundled model, Hub id or folder) and its CLIP scorer.

    ``model`` defaults to the bundled ``world`` when it is installed, else the ``tiny`` preset.
    The scorer defaults to the preset's own for presets and to ``openai/clip-vit-base-patch32``
    otherwise. ``checkpoint``: gradient checkpointing inside the denoiser (see
    :meth:`~dpo_diff.pipelines.stable_diffusion.StableDiffusionModel.enable_checkpointing`).
    """
    model = model or default_model()
    dev = resolve_device(device)
    if model in bundled_models() and dtype is None and dev.type == "cpu":
        dtype = torch.float32  # shipped as fp16 safetensors; computed in fp32 on a CPU
    pipe = load_pipeline(model, dev, dtype)
    generator = make_model(pipe, model)
    if checkpoint:
        generator.enable_checkpointing()
    own_scorer = model in PRESETS or model in bundled_models() or has_own_scorer(model)
    if scorer is None and has_own_scorer(model):
        scorer = str(Path(model).expanduser() / "scorer")
    scorer_name = scorer or (model if own_scorer else DEFAULT_SCORER)
    clip_scorer = ClipScorer.load(scorer_name, dev)
    defaults = run_defaults(generator, model)
    steps = defaults.get("steps", 20 if own_scorer else 50)
    return Engine(model, generator, clip_scorer, steps, defaults.get("guidance", DEFAULT_GUIDANCE), scorer_name)


def run_defaults(adapter, model: str) -> dict:
    """Steps and guidance a run on ``model`` takes unless told: the adapter's (SD3 / FLUX: their
    pipeline's own; an adapter class or instance), overridden by the preset's."""
    return {**getattr(adapter, "run_defaults", {}), **preset_defaults(model)}


def load_for(config) -> Engine:
    """The engine a :class:`~dpo_diff.config.RunConfig` asks for (``--scorer`` names the objective's
    model; it is the engine's own scorer only for the objective that uses it)."""
    spec = get_objective(config.objective)
    return load(config.model, scorer=config.scorer if spec.engine_scorer else None, device=config.device,
                checkpoint=config.checkpoint)


def known_guidance(model: str) -> float | None:
    """The guidance a run on ``model`` uses by default, when it is known without loading weights
    (presets and bundled models); None for Hub ids and folders (their adapter decides on load)."""
    if model in PRESETS:
        from .pipelines import get_family

        family = get_family(PRESETS[model].get("family", "sd"))
        return run_defaults(family.adapter, model).get("guidance", DEFAULT_GUIDANCE)
    return DEFAULT_GUIDANCE if model in bundled_models() else None
