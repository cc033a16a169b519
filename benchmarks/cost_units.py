"""What a VAE decode and a scorer call cost, in UNet passes: the conversion the cost meter uses.

dpo-diff counts every run's compute in UNet-pass equivalents (see ``dpo_diff.cost``): the VAE
decode and the CLIP scorer are converted by their forward FLOPs relative to one UNet pass at
the run's resolution (a backward counts twice its forward). This script prints that conversion:

  - for the published SD-1.5 and SDXL-base architectures (configs of ``sd15-random`` /
    ``sdxl-random``, scorer CLIP ViT-B/32), counted on PyTorch's meta device: no weights, no
    compute, any resolution, seconds on a laptop;
  - for the loaded models (``tiny``, the bundled ``world``), exactly as a run measures them.

    python benchmarks/cost_units.py               # SD-1.5 at 512 px, SDXL at 1024 px, tiny, world
    python benchmarks/cost_units.py --quick       # CI: SD-1.5 at 512 px and tiny
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from dpo_diff.cost import count_flops, measure_cost_ratios  # noqa: E402


def published(name: str, pixels: int) -> dict:
    """FLOPs of one UNet pass, one decode and one scorer call for a published architecture, on meta."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from dpo_diff.models.presets import PRESETS

    preset = PRESETS[name]
    scorer = preset["scorer"]
    with torch.device("meta"):
        unet = UNet2DConditionModel(**preset["unet"])
        vae = AutoencoderKL(**{k: v for k, v in preset["vae"].items() if k != "force_upcast"})
        vision = CLIPVisionModelWithProjection(
            CLIPVisionConfig(**scorer["vision_config"], projection_dim=scorer["projection_dim"])
        )
    side = pixels // 8
    x = torch.zeros(1, 4, side, side, device="meta")
    kwargs = {"encoder_hidden_states": torch.zeros(1, 77, unet.config.cross_attention_dim, device="meta")}
    if unet.config.addition_embed_type == "text_time":
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.zeros(1, 1280, device="meta"),
                                       "time_ids": torch.zeros(1, 6, device="meta")}
    t = torch.tensor(500, device="meta")
    size = scorer["vision_config"]["image_size"]
    unet_f = count_flops(lambda: unet(x, t, **kwargs))
    decode_f = count_flops(lambda: vae.decode(x))
    score_f = count_flops(lambda: vision(pixel_values=torch.zeros(1, 3, size, size, device="meta")))
    return {"model": name, "pixels": pixels, "unet_gflop": unet_f / 1e9, "decode_gflop": decode_f / 1e9,
            "score_gflop": score_f / 1e9, "decode_passes": decode_f / unet_f, "score_passes": score_f / unet_f}


def loaded(name: str) -> dict:
    import dpo_diff

    engine = dpo_diff.load(name, device="cpu")
    decode, score, gflops = measure_cost_ratios(engine.model, engine.scorer)
    return {"model": name, "pixels": engine.model.height, "unet_gflop": gflops["unet"],
            "decode_gflop": gflops["decode"], "score_gflop": gflops["score"],
            "decode_passes": decode, "score_passes": score}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="SD-1.5 at 512 px and tiny only")
    parser.add_argument("--json", default="benchmarks/results/cost_units.json")
    args = parser.parse_args(argv)
    rows = [published("sd15-random", 512)]
    if not args.quick:
        rows.append(published("sdxl-random", 1024))
    rows.append(loaded("tiny"))
    if not args.quick:
        from dpo_diff.models import bundled_models

        if "world" in bundled_models():
            rows.append(loaded("world"))
    print("one VAE decode and one scorer call, in UNet passes (forward FLOPs; a backward counts 2 forwards)")
    header = (f"{'model':<12} {'px':>5} {'UNet GFLOP':>11} {'decode GFLOP':>13} {'score GFLOP':>12} "
              f"{'decode = passes':>16} {'score = passes':>15}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:<12} {r['pixels']:>5} {r['unet_gflop']:11.1f} {r['decode_gflop']:13.1f} "
              f"{r['score_gflop']:12.2f} {r['decode_passes']:16.3f} {r['score_passes']:15.4f}")
    sd15 = rows[0]
    per_eval = 2 * 50 + sd15["decode_passes"] + sd15["score_passes"]
    per_iter = 2 * (15 + 3) + 3 * (sd15["decode_passes"] + sd15["score_passes"])
    print(f"SD-1.5 512 px, 1 seed, 50 guided steps: an evaluation is {per_eval:.1f} UNet-pass equivalents "
          f"(100 UNet passes + decode + score); a shortcut iteration at t_i = 15, K = 1 is {per_iter:.1f} "
          f"(36 UNet passes + decode and score with their backward)")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
