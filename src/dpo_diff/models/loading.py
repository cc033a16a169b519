"""One entry point to load a text-to-image model and a CLIP scorer, by preset, Hub id or folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ..errors import DpoDiffError, ModelNotFoundError
from ..logs import progress_bars
from .presets import PRESETS, build_preset_pipeline, build_preset_scorer

log = logging.getLogger(__name__)

DEFAULT_SCORER = "openai/clip-vit-base-patch32"


def bundled_models() -> dict[str, Path]:
    """Models that ship inside the package (a diffusers folder each), by name."""
    from importlib import resources

    world = Path(str(resources.files("dpo_diff.data").joinpath("world")))
    return {"world": world} if (world / "model_index.json").is_file() else {}


def default_model() -> str:
    """The bundled world when it is installed, else the tiny preset."""
    return "world" if "world" in bundled_models() else "tiny"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as given, else cuda, then mps, then cpu."""
    if device is not None:
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise DpoDiffError(f"unknown device '{device}': use cuda, cuda:N, mps or cpu") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise DpoDiffError(f"device '{device}' asked for, but this torch sees no CUDA GPU")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DpoDiffError(f"device '{device}' asked for, but MPS is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """fp16 on accelerators, fp32 on CPU."""
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32


def _quiet_progress_bars() -> None:
    """The CLI shows its own progress; library loading bars would break its one-line messages."""
    if not progress_bars():
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()


def _check_source(name: str, what: str) -> None:
    """Fail early, in one line, for a folder that is not a saved model."""
    path = Path(name).expanduser()
    looks_like_path = name.startswith((".", "/", "~")) or os.sep in name and path.exists()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"{what} '{name}' is a file, not a model folder")
        if not any(path.iterdir()):
            raise ModelNotFoundError(f"{what} folder '{name}' is empty")
    elif looks_like_path:
        raise ModelNotFoundError(f"{what} folder '{name}' does not exist")


def _load_error(name: str, what: str, err: Exception) -> ModelNotFoundError:
    """One line a user can act on: why (briefly), and what to use instead."""
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    for tail in (" Please check", " Check the", " check the stacktrace"):  # diffusers points at a traceback we do not show
        first = first.split(tail)[0]
    first = first.removeprefix(f"Cannot load model {name}: ").rstrip(". ")
    first = first if len(first) <= 120 else first[:119].rstrip() + "…"
    if Path(name).expanduser().exists():  # a local folder that is not a complete saved model
        return ModelNotFoundError(f"cannot load {what} folder '{name}': {first}")
    where = "not in the local cache (HF_HUB_OFFLINE is set)" if offline else "not found on the Hub or in the cache"
    presets = ", ".join(PRESETS)
    bundled = " or the bundled " + ", ".join(bundled_models()) if bundled_models() else ""
    return ModelNotFoundError(
        f"cannot load {what} '{name}': {where} [{first}]. Use a preset ({presets}){bundled}; for a Hub "
        "model, run once online to cache it (HF_HUB_OFFLINE unset) or give a local folder saved with save_pretrained"
    )


def load_pipeline(name: str, device: torch.device, dtype: torch.dtype | None = None):
    """A diffusers pipeline from a preset name, a Hub id or a local folder."""
    if name in PRESETS:
        pipe = build_preset_pipeline(name, device=device)
        return pipe.to(device) if dtype in (None, torch.float32) else pipe.to(device=device, dtype=dtype)
    name = str(bundled_models().get(name, name))  # a bundled model loads like any local folder
    _check_source(name, "model")
    from diffusers import DiffusionPipeline

    dtype = dtype or default_dtype(device)
    _quiet_progress_bars()
    try:
        pipe = DiffusionPipeline.from_pretrained(
            name, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False
        )
    except Exception as err:  # diffusers raises OSError, ValueError, HTTP errors ... for a bad source
        raise _load_error(name, "model", err) from err
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_scorer_parts(name: str, device: torch.device):
    """(CLIPModel, tokenizer, preprocessing settings) for the scorer ``name``."""
    if name in PRESETS:
        from .clip_bpe import clip_tokenizer

        model, preprocess = build_preset_scorer(name)
        return model.to(device), clip_tokenizer(), preprocess
    if name in bundled_models():
        name = str(bundled_models()[name] / "scorer")
    _check_source(name, "scorer")
    from transformers import CLIPModel

    _quiet_progress_bars()
    try:
        model = CLIPModel.from_pretrained(name).float()  # scorers run in fp32 (the world ships fp16)
    except Exception as err:
        raise _load_error(name, "scorer", err) from err
    tokenizer, preprocess = load_clip_preprocessing(name)
    return model.eval().to(device), tokenizer, preprocess


def load_clip_preprocessing(name: str):
    """(tokenizer, image preprocessing settings) of a CLIP checkpoint, without its weights."""
    from transformers import CLIPImageProcessor, CLIPTokenizer

    folder = Path(name).expanduser()
    tokenizer_from = name
    if folder.is_dir() and not any((folder / f).is_file() for f in ("tokenizer.json", "vocab.json")):
        # a scorer folder inside a pipeline folder (the bundled world) shares the pipeline's tokenizer
        sibling = folder.parent / "tokenizer"
        tokenizer_from = str(sibling) if sibling.is_dir() else None
    try:
        if tokenizer_from is None:
            from .clip_bpe import clip_tokenizer

            tokenizer = clip_tokenizer()
        else:
            tokenizer = CLIPTokenizer.from_pretrained(tokenizer_from)
        processor = CLIPImageProcessor.from_pretrained(name)
    except Exception as err:
        raise _load_error(name, "scorer", err) from err
    crop = processor.crop_size  # a dict in transformers 4, a SizeDict in 5, an int in old configs
    size = int(crop) if isinstance(crop, int) else int(getattr(crop, "height", None) or crop["height"])
    return tokenizer, {"image_size": size, "mean": tuple(processor.image_mean), "std": tuple(processor.image_std)}
