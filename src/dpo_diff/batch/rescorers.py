"""Other scorers for re-scoring stored images, behind one interface: ``(images, prompt) -> scores``.

- ``clip`` / ``clip:ID_OR_PATH``: spherical CLIP distance (lower is better), any CLIPModel.
- ``pickscore``: PickScore v1 (a CLIP-H fine-tuned on human preferences), as
  ``100 * cosine`` (higher is better), through transformers.
- ``imagereward``: ImageReward's reward (higher is better); needs ``pip install 'dpo-diff[scorers]'``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import DpoDiffError

Rescorer = Callable[[list, str], list[float]]


def _to_tensor(images) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) for im in images])


def _clip_family(model_id: str, processor_id: str | None, as_preference: bool) -> Rescorer:
    from ..models import load_scorer_parts, resolve_device
    from ..models.loading import load_clip_preprocessing
    from ..objectives import ClipScorer

    device = resolve_device(None)
    model, tokenizer, pre = load_scorer_parts(model_id, device)
    if processor_id is not None:  # PickScore keeps its tokenizer and preprocessing in another repo
        tokenizer, pre = load_clip_preprocessing(processor_id)
    scorer = ClipScorer(model, tokenizer, pre["image_size"], pre["mean"], pre["std"]).to(device)

    @torch.no_grad()
    def score(images, prompt: str) -> list[float]:
        image_emb = scorer.encode_images(_to_tensor(images))
        text_emb = scorer.encode_text([prompt])
        if as_preference:
            cos = torch.nn.functional.cosine_similarity(image_emb, text_emb)
            return (100 * cos).tolist()
        return scorer.distance(_to_tensor(images), text_emb).tolist()

    return score


def _imagereward() -> Rescorer:
    try:
        import ImageReward as reward_lib  # noqa: N813
    except ImportError:
        raise DpoDiffError("the imagereward scorer needs an extra: pip install 'dpo-diff[scorers]'") from None
    model = reward_lib.load("ImageReward-v1.0")

    @torch.no_grad()
    def score(images, prompt: str) -> list[float]:
        return [float(model.score(prompt, image)) for image in images]

    return score


def make_rescorer(spec: str) -> tuple[str, Rescorer]:
    """(name, scorer) for ``clip``, ``clip:ID_OR_PATH``, ``pickscore`` or ``imagereward``."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "clip":
        from ..models import DEFAULT_SCORER

        return "clip", _clip_family(arg or DEFAULT_SCORER, None, as_preference=False)
    if kind == "pickscore":
        return "pickscore", _clip_family(
            arg or "yuvalkirstain/PickScore_v1", "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", as_preference=True
        )
    if kind == "imagereward":
        return "imagereward", _imagereward()
    raise DpoDiffError(f"unknown scorer '{spec}': use clip, clip:ID_OR_PATH, pickscore or imagereward")
