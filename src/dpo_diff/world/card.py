"""The world's model card: the measurements of ``quality.py`` written as README.md."""

from __future__ import annotations

import json
from pathlib import Path

from .judge import ATTRIBUTES
from .scenes import COLORS, POSITIONS, SHAPES, SIZES

CARD = """# dpo-diff world (bundled model)

A small text-to-image world trained from scratch by `dpo-diff world train` on this project's synthetic
scenes ({images} pictures, 32x32): one or two shapes ({colors} colors x {shapes} shapes x 2 sizes x 5 positions)
on a light grey background, some blurry or noisy, with English template captions. Rare WordNet synonyms
(crimson, violet, vast, tiny, centre, ...) appear about 30 times in 20 000 captions, so the text encoder
learns them badly: room for meaning-preserving attacks. Exact Stable Diffusion component classes:
`UNet2DConditionModel`, `AutoencoderKL` (32x32 -> 8x8x4), `CLIPTextModel` with the real CLIP BPE
tokenizer, DDIM; plus a separate CLIP scorer (`scorer/`, its own seed, trained longer, half of its
pictures VAE reconstructions; it reads text with the pipeline's `tokenizer/`). Weights are fp16
safetensors, loaded like any diffusers folder.

Training: {train_seconds} s on {threads} CPU threads ({parts}); VAE reconstruction PSNR {psnr} dB.
Config: `training.json`. Numbers below: `dpo-diff world card` ({n_single} held-out single-object prompts,
seeds {seeds}, CFG {guidance:g}, DDIM {steps} steps, judged by the pixel judge `dpo_diff.world.judge`).

## Scorer: attribute accuracy on held-out pictures
| pictures | color | shape | size | position |
|---|---|---|---|---|
| clean renders | {sc_color} | {sc_shape} | {sc_size} | {sc_position} |
| VAE reconstructions | {sv_color} | {sv_shape} | {sv_size} | {sv_position} |

## Generator: judged accuracy of generated pictures
| prompts | color | shape | size | position | faithfulness |
|---|---|---|---|---|---|
| held-out, common words | {gc_color} | {gc_shape} | {gc_size} | {gc_position} | {gc_faithfulness} |
| rare-synonym subset ({n_rare}), common words | {grc_color} | {grc_shape} | {grc_size} | {grc_position} | {grc_faithfulness} |
| same subset, rare synonyms | {grr_color} | {grr_shape} | {grr_size} | {grr_position} | {grr_faithfulness} |
| two objects ({n_two}) | | | | | {g2_faithfulness} |

## Negative prompts (small-object prompts: share judged small)
| negative prompt | share small |
|---|---|
| none | {np_none} |
| "large" (a wrong attribute) | {np_large} |
| "small" (the right attribute) | {np_small} |
{agreement}"""

AGREEMENT = """
## Scorer vs judge on generated pictures
The held-out pictures above (common words, {n_seeds} seeds): for each attribute, the caption variant
the scorer finds closest (only that attribute changed) against the value the judge reads; pictures
where the judge sees no object are left out.

| pictures | color | shape | size | position |
|---|---|---|---|---|
| all the judge reads | {ag_color} | {ag_shape} | {ag_size} | {ag_position} |
| judge reads a value the prompt did not ask for | {am_color} | {am_shape} | {am_size} | {am_position} |
| chance (a value at random) | {ch_color} | {ch_shape} | {ch_size} | {ch_position} |

Pairs of pictures of one prompt (two seeds) whose judged faithfulness differs ({pairs} of {pairs_total}):
the lower CLIP loss goes with the more faithful picture in {pairs_agree} of them (chance 50 %).
"""


def write_card(folder: str | Path, report: dict) -> Path:
    folder = Path(folder)
    info = json.loads((folder / "training.json").read_text()) if (folder / "training.json").exists() else {}
    pct = lambda x: f"{100 * x:.0f} %"  # noqa: E731
    g = report["generator"]
    fields = {
        "images": info.get("config", {}).get("images", "?"), "colors": len(COLORS), "shapes": len(SHAPES),
        "train_seconds": info.get("total_seconds", "?"), "threads": info.get("threads", "?"),
        "parts": ", ".join(f"{k} {v} s" for k, v in info.get("seconds", {}).items()), "psnr": info.get("vae_psnr_db", "?"),
        "n_single": report["n"]["held_out_single"], "seeds": report["n"]["seeds"], "n_rare": report["n"]["rare_subset"],
        "steps": report["n"].get("steps", 20), "guidance": report["n"].get("guidance", 7.5),  # older reports: the defaults then
        "n_two": report["n"]["two_object"],
        "np_none": pct(report["negative_prompt"]["size_no_negative"]),
        "np_large": pct(report["negative_prompt"]["size_negative_large"]),
        "np_small": pct(report["negative_prompt"]["size_negative_small"]),
        "g2_faithfulness": pct(g["two_objects"]["faithfulness"]),
    }
    for prefix, key in (("sc", "scorer_accuracy_clean"), ("sv", "scorer_accuracy_vae")):
        fields.update({f"{prefix}_{a}": pct(report[key][a]) for a in ATTRIBUTES})
    for prefix, key in (("gc", "common"), ("grc", "rare_subset_common"), ("grr", "rare_subset_rare")):
        fields.update({f"{prefix}_{a}": pct(g[key][a]) for a in (*ATTRIBUTES, "faithfulness")})
    fields["agreement"] = _agreement_section(report, pct)
    (folder / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    path = folder / "README.md"
    card = CARD.format(**fields)
    studies = folder / "studies.md"  # the solver and space studies (benchmarks/world_study.py), kept by hand
    if studies.exists():
        card = card.rstrip("\n") + "\n\n" + studies.read_text()
    path.write_text(card)
    return path


def _agreement_section(report: dict, pct) -> str:
    """The card's scorer-vs-judge section, empty for a report measured without it."""
    agreement = report.get("scorer_judge_agreement")
    if not agreement:
        return ""
    att, pairs = agreement["attributes"], agreement["pairs"]
    values = {"color": COLORS, "shape": SHAPES, "size": SIZES, "position": POSITIONS}
    fields = {"n_seeds": len(report["n"]["seeds"]), "pairs": pairs["pairs"], "pairs_total": pairs["pairs_total"],
              "pairs_agree": "-" if pairs["agree"] is None else pct(pairs["agree"])}
    for a in ATTRIBUTES:
        fields[f"ag_{a}"] = f"{pct(att[a]['agree'])} of {att[a]['images']}"
        mistakes = att[a]["agree_on_mistakes"]
        fields[f"am_{a}"] = "-" if mistakes is None else f"{pct(mistakes)} of {att[a]['mistakes']}"
        fields[f"ch_{a}"] = pct(1 / len(values[a]))
    return AGREEMENT.format(**fields)
