"""Measure a trained world: the numbers of its model card (the card's text is ``card.py``).

- the scorer's attribute accuracy on held-out pictures (clean renders and VAE
  reconstructions): for each attribute, is the true caption closer than every caption
  that changes only that attribute?
- the generator's judged faithfulness on held-out prompts with common words (the model's own
  guidance and steps),
- the drop when the same prompts use the rare synonyms,
- the effect of a negative prompt naming a wrong or the right attribute,
- how often the scorer agrees with the judge on generated pictures: per attribute (which
  caption variant the scorer finds closest vs. what the judge reads), and per pair of
  pictures of one prompt (does the lower CLIP loss go with the higher judged faithfulness?).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import numpy as np
import torch

from ..objectives import spherical_distance
from .judge import ATTRIBUTES, faithfulness, read
from .scenes import COLORS, POSITIONS, SHAPES, SIZES, Obj, Scene, caption, random_scene, render

RARE_FOR = {"red": "crimson", "purple": "violet", "large": "vast", "small": "tiny", "center": "centre"}


def held_out_scenes(n: int, seed: int = 12345, p_two: float = 0.0) -> list[Scene]:
    rng = random.Random(seed)
    return [random_scene(rng, p_two=p_two, p_quality=0.0) for _ in range(n)]


def _variants(obj: Obj, attribute: str) -> list[Obj]:
    values = {"color": list(COLORS), "shape": list(SHAPES), "size": list(SIZES), "position": list(POSITIONS)}[attribute]
    return [replace(obj, **{attribute: v}) for v in values]


@torch.no_grad()
def scorer_accuracy(engine, scenes: list[Scene], through_vae: bool) -> dict[str, float]:
    scorer = engine.scorer
    images = torch.from_numpy(np.stack([render(s) for s in scenes])).permute(0, 3, 1, 2)
    if through_vae:
        vae = engine.model.vae
        x = images.to(vae.dtype) * 2 - 1
        images = ((vae.decode(vae.encode(x).latent_dist.mode()).sample + 1) / 2).clamp(0, 1).float()
    image_emb = torch.nn.functional.normalize(scorer.encode_images(images), dim=-1)
    hits = {a: 0 for a in ATTRIBUTES}
    for emb, scene in zip(image_emb, scenes):
        obj = scene.objects[0]
        for a in ATTRIBUTES:
            options = _variants(obj, a)
            texts = [caption(Scene((o,))) for o in options]
            text_emb = torch.nn.functional.normalize(scorer.encode_text(texts), dim=-1)
            hits[a] += options[int((text_emb @ emb).argmax())] == obj
    return {a: hits[a] / len(scenes) for a in ATTRIBUTES}


@torch.no_grad()
def generate(engine, prompts: list[str], negatives: list[str], seed: int, steps: int | None = None,
             guidance: float | None = None):
    """Pictures of ``prompts`` at the engine's own steps and guidance unless given."""
    model = engine.model
    steps = steps or engine.default_steps
    guidance = engine.default_guidance if guidance is None else guidance
    images = []
    for i in range(0, len(prompts), 16):
        cond, uncond = model.encode(prompts[i : i + 16]), model.encode(negatives[i : i + 16])
        images.append(model.generate(cond, uncond, [seed], steps, guidance))
    return torch.cat(images).permute(0, 2, 3, 1).cpu().numpy()


def _rare(text: str) -> str:
    return " ".join(RARE_FOR.get(w, w) for w in text.split())


def judged(images, scenes) -> dict[str, float]:
    per = {a: 0.0 for a in ATTRIBUTES}
    for image, scene in zip(images, scenes):
        seen = read(image, 1)
        for a in ATTRIBUTES:
            per[a] += bool(seen) and getattr(seen[0], a) == getattr(scene.objects[0], a)
    out = {a: per[a] / len(scenes) for a in ATTRIBUTES}
    out["faithfulness"] = float(np.mean([faithfulness(i, s) for i, s in zip(images, scenes)]))
    return out


@torch.no_grad()
def scorer_judge_agreement(
    engine, scenes: list[Scene], images_by_seed: list[np.ndarray] | None = None, seeds: tuple[int, ...] = (0, 1)
) -> dict:
    """How often the CLIP scorer agrees with the pixel judge on generated single-object pictures.

    ``images_by_seed[k][i]`` is a picture generated for ``caption(scenes[i])`` with the k-th seed
    (CFG 7.5, no negative prompt); without it, they are generated here, one set per seed in ``seeds``.

    - ``attributes``: per attribute, over pictures where the judge sees an object, the share where
      the caption variant the scorer finds closest (only that attribute changed, as in
      :func:`scorer_accuracy`) names the value the judge reads (``agree``); the same share over
      pictures where the judge reads a value the prompt did not ask for (``agree_on_mistakes``: does
      the scorer see the generator's mistake?); and the counts of both.
    - ``pairs``: for two pictures of one prompt (different seeds) whose judged faithfulness differs,
      the share where the lower CLIP loss (spherical distance to the prompt, the optimizer's
      objective) goes with the higher faithfulness; a tie in loss counts half. Chance is 0.5.
    """
    scorer = engine.scorer
    prompts = [caption(s) for s in scenes]
    if images_by_seed is None:
        images_by_seed = [generate(engine, prompts, [""] * len(prompts), seed) for seed in seeds]
    prompt_emb = scorer.encode_text(prompts)
    variant_emb = {}  # (object, attribute) -> (variants, normalised text embeddings)
    for scene in scenes:
        obj = scene.objects[0]
        for a in ATTRIBUTES:
            if (obj, a) not in variant_emb:
                options = _variants(obj, a)
                emb = scorer.encode_text([caption(Scene((o,))) for o in options])
                variant_emb[obj, a] = options, torch.nn.functional.normalize(emb, dim=-1)
    counts = {a: {"read": 0, "agree": 0, "mistakes": 0, "agree_on_mistakes": 0} for a in ATTRIBUTES}
    losses, faiths = [], []
    for images in images_by_seed:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
        image_emb = torch.cat([scorer.encode_images(chunk) for chunk in x.split(64)])
        losses.append(spherical_distance(image_emb, prompt_emb).cpu().numpy())
        faiths.append(np.array([faithfulness(i, s) for i, s in zip(images, scenes)]))
        image_emb = torch.nn.functional.normalize(image_emb, dim=-1)
        for emb, image, scene in zip(image_emb, images, scenes):
            seen = read(image, 1)
            if not seen:
                continue
            obj = scene.objects[0]
            for a in ATTRIBUTES:
                options, text_emb = variant_emb[obj, a]
                pick = getattr(options[int((text_emb @ emb.to(text_emb.device)).argmax())], a)
                judge, agree = getattr(seen[0], a), pick == getattr(seen[0], a)
                c = counts[a]
                c["read"] += 1
                c["agree"] += agree
                if judge != getattr(obj, a):
                    c["mistakes"] += 1
                    c["agree_on_mistakes"] += agree
    attributes = {
        a: {"agree": c["agree"] / max(1, c["read"]), "images": c["read"],
            "agree_on_mistakes": c["agree_on_mistakes"] / c["mistakes"] if c["mistakes"] else None,
            "mistakes": c["mistakes"]}
        for a, c in counts.items()
    }
    pairs = total = 0
    agree = 0.0
    for j, k in itertools.combinations(range(len(images_by_seed)), 2):
        for i in range(len(scenes)):
            total += 1
            df, dl = faiths[j][i] - faiths[k][i], losses[j][i] - losses[k][i]
            if df == 0:
                continue
            pairs += 1
            agree += 0.5 if dl == 0 else float((df > 0) == (dl < 0))
    return {
        "attributes": attributes,
        "pairs": {"agree": agree / pairs if pairs else None, "pairs": pairs, "pairs_total": total},
    }


def measure_stages(seeds: tuple[int, ...] = (0, 1)) -> int:
    """How many steps :func:`measure` reports to its ``progress``."""
    return 3 + 6 * len(seeds)


def measure(engine, n: int = 200, seeds: tuple[int, ...] = (0, 1), progress=None) -> dict:
    """The card's numbers; ``progress(done, total, what)`` hears after each of its stages."""
    total, done = measure_stages(seeds), 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, what)

    scenes = held_out_scenes(n)
    report: dict = {"scorer_accuracy_clean": scorer_accuracy(engine, scenes, through_vae=False)}
    step("scorer on clean pictures")
    report["scorer_accuracy_vae"] = scorer_accuracy(engine, scenes, through_vae=True)
    step("scorer on VAE reconstructions")
    common = [caption(s) for s in scenes]
    rare_idx = [i for i, p in enumerate(common) if _rare(p) != p]
    rows = {"common": [], "rare_subset_common": [], "rare_subset_rare": []}
    two = held_out_scenes(n // 2, seed=999, p_two=1.0)
    rows["two_objects"] = []
    small = [i for i, s in enumerate(scenes) if s.objects[0].size == "small"]
    neg = {"size_no_negative": [], "size_negative_large": [], "size_negative_small": []}
    common_images = []
    for seed in seeds:
        images = generate(engine, common, [""] * len(common), seed)
        step(f"seed {seed}: common words")
        common_images.append(images)
        rows["common"].append(judged(images, scenes))
        rows["rare_subset_common"].append(judged(images[rare_idx], [scenes[i] for i in rare_idx]))
        rare_images = generate(engine, [_rare(common[i]) for i in rare_idx], [""] * len(rare_idx), seed)
        rows["rare_subset_rare"].append(judged(rare_images, [scenes[i] for i in rare_idx]))
        step(f"seed {seed}: rare synonyms")
        two_images = generate(engine, [caption(s) for s in two], [""] * len(two), seed)
        rows["two_objects"].append({"faithfulness": float(np.mean([faithfulness(i, s) for i, s in zip(two_images, two)]))})
        step(f"seed {seed}: two objects")
        prompts = [common[i] for i in small]
        for key, negative in (("size_no_negative", ""), ("size_negative_large", "large"), ("size_negative_small", "small")):
            imgs = generate(engine, prompts, [negative] * len(prompts), seed)
            neg[key].append(float(np.mean([bool(r) and r[0].size == "small" for r in (read(x, 1) for x in imgs)])))
            step(f"seed {seed}: negative prompt {negative or 'none'!r}")
    report["generator"] = {k: {m: float(np.mean([r[m] for r in v])) for m in v[0]} for k, v in rows.items()}
    report["negative_prompt"] = {k: float(np.mean(v)) for k, v in neg.items()}
    report["scorer_judge_agreement"] = scorer_judge_agreement(engine, scenes, common_images)
    step("scorer vs judge")
    report["n"] = {"held_out_single": n, "rare_subset": len(rare_idx), "two_object": len(two), "seeds": list(seeds),
                   "steps": engine.default_steps, "guidance": engine.default_guidance}
    return report
