"""Train the bundled world from scratch: VAE, text encoder, UNet, and a separate CLIP scorer.

Everything is seeded and runs on a CPU (about 35 minutes on 2 cores at the default sizes).
The result is a diffusers ``StableDiffusionPipeline`` folder (safetensors, fp16) plus a
``scorer/`` CLIP folder, loaded later through the same ``from_pretrained`` path as a Hub model.

    dpo-diff world train --out src/dpo_diff/data/world      # the shipped model
    dpo-diff world train --out /tmp/w --quick                 # seconds: exercises every stage
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..models.clip_bpe import clip_tokenizer
from .scenes import Scene, caption, random_scene, render, write_vocabulary


@dataclass
class TrainConfig:
    seed: int = 0
    images: int = 20_000
    vae_steps: int = 800
    clip_steps: int = 500
    scorer_steps: int = 1000
    unet_steps: int = 1300
    batch: int = 64
    clip_batch: int = 128
    caption_dropout: float = 0.1
    text_hidden: int = 128
    scorer_hidden: int = 64

    @classmethod
    def quick(cls) -> TrainConfig:
        return cls(images=256, vae_steps=3, clip_steps=3, scorer_steps=3, unet_steps=3, batch=8, clip_batch=8)


Log = Callable[[str], None]


def make_data(n: int, seed: int) -> tuple[torch.Tensor, list[Scene]]:
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    scenes = [random_scene(rng) for _ in range(n)]
    images = np.stack([render(s, noise) for s in scenes])
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), scenes


def _loop(name: str, steps: int, step: Callable[[int], float], log: Log) -> None:
    """Run ``steps`` training steps: a progress bar on a terminal's stderr, and a ``log`` line every 10 %.

    The bar (phase name, steps, rate, the last loss) shows only when stderr is a terminal; the
    log lines always go to ``log``, written around the bar so neither garbles the other.
    """
    from tqdm import tqdm  # installed with transformers and huggingface_hub

    start, recent = time.perf_counter(), []
    with tqdm(total=steps, desc=name, unit="step", file=sys.stderr, disable=not _stderr_is_terminal(),
              dynamic_ncols=True, leave=False) as bar:
        for i in range(steps):
            loss = step(i)
            recent.append(loss)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            bar.update(1)
            if (i + 1) % max(1, steps // 10) == 0 or i + 1 == steps:
                rate = (i + 1) / (time.perf_counter() - start)
                line = f"{name}: step {i + 1}/{steps}, loss {np.mean(recent):.4f}, {rate:.1f} steps/s"
                if bar.disable:
                    log(line)
                else:
                    with bar.external_write_mode(file=sys.stderr):
                        log(line)
                recent = []


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr (test runners, pipes)
        return False


def train_vae(images: torch.Tensor, cfg: TrainConfig, log: Log):
    from diffusers import AutoencoderKL

    torch.manual_seed(cfg.seed + 1)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        block_out_channels=(16, 32, 64), sample_size=32,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    )
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(cfg.seed + 1)

    def step(i: int) -> float:
        lr = 1e-3 * min(1.0, (i + 1) / 50) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * i / max(1, cfg.vae_steps))))
        for group in opt.param_groups:
            group["lr"] = lr
        x = images[torch.randint(len(images), (cfg.batch,), generator=g)] * 2 - 1
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        kl = post.kl().mean() / (4 * 8 * 8)
        loss = F.mse_loss(rec, x) + 1e-6 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    _loop("vae", cfg.vae_steps, step, log)
    vae.eval()
    with torch.no_grad():
        sample = images[:512] * 2 - 1
        std = float(vae.encode(sample).latent_dist.mode().std())
    vae.register_to_config(scaling_factor=1.0 / std)
    return vae


def _clip(cfg: TrainConfig, hidden: int, seed: int):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    tokens = {"vocab_size": 49408, "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407}
    config = CLIPConfig(
        text_config={**tokens, "hidden_size": hidden, "intermediate_size": 4 * hidden, "num_attention_heads": 4,
                     "num_hidden_layers": 4, "max_position_embeddings": 77},
        vision_config={"image_size": 32, "patch_size": 4, "hidden_size": hidden, "intermediate_size": 4 * hidden,
                       "num_attention_heads": 4, "num_hidden_layers": 4},
        projection_dim=hidden,
    )
    return CLIPModel(config)


MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def train_clip(images, scenes, cfg: TrainConfig, hidden: int, steps: int, seed: int, log: Log, name: str, extra=None):
    """Contrastive CLIP on (image, caption) pairs; ``extra`` images (VAE reconstructions) as augmentation."""
    model = _clip(cfg, hidden, seed)
    tokenizer = clip_tokenizer()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)

    def step(i: int) -> float:
        lr = 5e-4 * min(1.0, (i + 1) / 100) * 0.5 * (1 + math.cos(math.pi * i / max(1, steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(images), (cfg.clip_batch,), generator=g)
        x = images[idx]
        if extra is not None:
            use = torch.rand(len(idx), generator=g) < 0.5
            x = torch.where(use.view(-1, 1, 1, 1), extra[idx], x)
        texts = [caption(scenes[int(j)], rng) for j in idx]
        # captions are under 32 tokens and CLIP pools at the end token: 32 positions train the same model faster
        ids = tokenizer(texts, padding="max_length", max_length=32, truncation=True, return_tensors="pt").input_ids
        out = model(input_ids=ids, pixel_values=(x - MEAN) / STD, return_loss=True)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(out.loss.detach())

    _loop(name, steps, step, log)
    return model.eval()


def train_unet(vae, text_encoder, images, scenes, cfg: TrainConfig, log: Log):
    from diffusers import DDPMScheduler, UNet2DConditionModel

    torch.manual_seed(cfg.seed + 3)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(64, 128),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=text_encoder.config.hidden_size, attention_head_dim=8, norm_num_groups=16,
    )
    noise_sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    tokenizer = clip_tokenizer()
    opt = torch.optim.AdamW(unet.parameters(), lr=3e-4, weight_decay=0.01)
    rng = random.Random(cfg.seed + 3)
    g = torch.Generator().manual_seed(cfg.seed + 3)
    with torch.no_grad():  # latents once: the VAE is frozen from here on
        latents = torch.cat([vae.encode(c * 2 - 1).latent_dist.mode() for c in images.split(512)])
        latents = latents * vae.config.scaling_factor
    steps = cfg.unet_steps

    def step(i: int) -> float:
        lr = 3e-4 * min(1.0, (i + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / max(1, steps))))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(latents), (cfg.batch,), generator=g)
        texts = ["" if rng.random() < cfg.caption_dropout else caption(scenes[int(j)], rng) for j in idx]
        ids = tokenizer(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            cond = text_encoder(ids)[0]
        x0 = latents[idx]
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, 1000, (len(idx),), generator=g)
        xt = noise_sched.add_noise(x0, noise, t)
        loss = F.mse_loss(unet(xt, t, encoder_hidden_states=cond).sample, noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        return float(loss.detach())

    _loop("unet", steps, step, log)
    return unet.eval()


def train_world(out: str | Path, cfg: TrainConfig | None = None, log: Log = print) -> Path:
    """Train every part and save the pipeline folder (+ scorer/ and training.json) to ``out``."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPImageProcessor, CLIPTextConfig, CLIPTextModel

    cfg = cfg or TrainConfig()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(out)
    started = time.perf_counter()
    times = {}
    images, scenes = make_data(cfg.images, cfg.seed)
    log(f"data: {len(images)} scenes rendered")

    t = time.perf_counter()
    vae = train_vae(images, cfg, log)
    times["vae"] = time.perf_counter() - t
    with torch.no_grad():
        recon = torch.cat([((vae.decode(vae.encode(c * 2 - 1).latent_dist.mode()).sample + 1) / 2).clamp(0, 1)
                           for c in images.split(512)])
        psnr = float(10 * torch.log10(1 / F.mse_loss(recon, images)))
        clean = torch.tensor([s.quality == "clean" for s in scenes])
        psnr_clean = float(10 * torch.log10(1 / F.mse_loss(recon[clean], images[clean])))
    log(f"vae: reconstruction PSNR {psnr:.1f} dB ({psnr_clean:.1f} dB on clean pictures)")

    t = time.perf_counter()
    clip = train_clip(images, scenes, cfg, cfg.text_hidden, cfg.clip_steps, cfg.seed + 2, log, "text encoder")
    times["text_encoder"] = time.perf_counter() - t
    text_encoder = CLIPTextModel(CLIPTextConfig(**clip.config.text_config.to_dict()))
    text_encoder.load_state_dict(clip.text_model.state_dict())  # transformers 5: same keys, no text_model level
    text_encoder.eval().requires_grad_(False)

    t = time.perf_counter()
    unet = train_unet(vae, text_encoder, images, scenes, cfg, log)
    times["unet"] = time.perf_counter() - t

    t = time.perf_counter()
    scorer = train_clip(images, scenes, cfg, cfg.scorer_hidden, cfg.scorer_steps, cfg.seed + 100, log, "scorer", extra=recon)
    times["scorer"] = time.perf_counter() - t

    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon",
    )
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=clip_tokenizer(), unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)
    scorer.to(torch.float16).save_pretrained(out / "scorer", safe_serialization=True)
    # the scorer reads text with the pipeline's tokenizer (../tokenizer): one copy, not two
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
        image_mean=MEAN.flatten().tolist(), image_std=STD.flatten().tolist(),
    ).save_pretrained(out / "scorer")
    info = {"config": asdict(cfg), "seconds": {k: round(v, 1) for k, v in times.items()},
            "total_seconds": round(time.perf_counter() - started, 1), "vae_psnr_db": round(psnr, 2), "vae_psnr_clean_db": round(psnr_clean, 2),
            "threads": torch.get_num_threads()}
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    write_vocabulary(out)
    log(f"saved to {out} in {info['total_seconds']} s")
    return out
