"""Cost accounting in denoiser-pass equivalents, the unit every solver is compared in.

A denoiser pass is one call of the model's denoiser on one latent: the UNet of SD 1.x / 2.x and
SDXL, the transformer of SD3 and FLUX. Budgets mean the same for every family.

One *pass* is the denoiser applied to one latent at one timestep: a classifier-free-guided step
is two passes (conditional and unconditional branch). A backward pass costs two forward
passes of what it differentiates.

The VAE decode and the objective's image model (the CLIP scorer) are counted too, in
denoiser-pass equivalents: their forward FLOPs for the loaded model at the run's resolution
divided by one denoiser pass's (see :func:`measure_cost_ratios`). On SD-1.5 at 512 px one decode
is about 3 denoiser passes, so a shortcut iteration's decode + backward is not the rounding
error it would be at 64 px. Budgets (``--budget``) stay in denoiser passes; what a run spends
on decoding and scoring is drawn from the same budget, so a solver that decodes more
(the gradient solvers: every shortcut iteration decodes with a backward) pays for it.

Not counted: the text encoder (about 1-2 % of a denoiser pass on SD-1.5, and the same for every
solver), and the held-out re-evaluation after the search, which is reported apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)


@dataclass
class CostMeter:
    """Counts denoiser-pass equivalents against an optional budget.

    ``decode_passes`` and ``score_passes`` are the denoiser-pass equivalents of decoding and of
    scoring one image (0: not counted, as in a bare meter). ``counts`` keeps the number of
    forward calls per part (images for decode and score), backward passes apart.
    """

    budget: float | None = None
    used: float = 0.0
    decode_passes: float = 0.0
    score_passes: float = 0.0
    recompute: bool = False  # the denoiser is checkpointed: each differentiated pass is run once more in the backward
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("unet", "unet_backward", "unet_recompute", "decode", "decode_backward", "score", "score_backward"), 0))

    def add_forward(self, n: int) -> None:
        """``n`` denoiser passes."""
        self.used += int(n)
        self.counts["unet"] += int(n)

    def add_backward(self, n_forward: int) -> None:
        """The backward pass through ``n_forward`` denoiser passes (and, checkpointed, their recompute)."""
        self.used += self.backward_passes() * int(n_forward)
        self.counts["unet_backward"] += int(n_forward)
        if self.recompute:
            self.counts["unet_recompute"] += int(n_forward)

    def backward_passes(self) -> int:
        """Passes a backward through one denoiser pass costs: 2, or 3 with the checkpointed recompute."""
        return 3 if self.recompute else 2

    def add_decode(self, n_images: int, backward: bool = False) -> None:
        """Decoding ``n_images`` latents (``backward``: the backward pass through those decodes)."""
        self.used += (2 if backward else 1) * n_images * self.decode_passes
        self.counts["decode_backward" if backward else "decode"] += int(n_images)

    def add_score(self, n_images: int, backward: bool = False) -> None:
        """Scoring ``n_images`` images with the objective (``backward``: its backward pass)."""
        self.used += (2 if backward else 1) * n_images * self.score_passes
        self.counts["score_backward" if backward else "score"] += int(n_images)

    def image_cost(self, n_images: int, backward: bool = False) -> float:
        """denoiser-pass equivalents to decode and score ``n_images`` (forward, plus backward if asked)."""
        return (3 if backward else 1) * n_images * (self.decode_passes + self.score_passes)

    @property
    def left(self) -> float:
        return float("inf") if self.budget is None else self.budget - self.used

    def can_afford(self, cost: float) -> bool:
        return cost <= self.left + 1e-9

    def breakdown(self) -> dict:
        """What was spent, per part, in denoiser-pass equivalents, with the conversion used."""
        d, s, c = self.decode_passes, self.score_passes, self.counts
        return {
            "unet": c["unet"] + 2 * c["unet_backward"] + c.get("unet_recompute", 0),
            "decode": round(d * (c["decode"] + 2 * c["decode_backward"]), 3),
            "score": round(s * (c["score"] + 2 * c["score_backward"]), 3),
            "decode_passes_per_image": round(d, 4),
            "score_passes_per_image": round(s, 4),
            "counts": dict(c),
        }


def count_flops(fn: Callable[[], object]) -> int:
    """Forward FLOPs of ``fn()`` (matrix products, convolutions, attention), run without gradients."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn()
    return int(counter.get_total_flops())


_CACHE: dict[tuple, tuple[float, float, dict]] = {}


def measure_cost_ratios(model, scorer) -> tuple[float, float, dict]:
    """(decode, score) cost of one image in denoiser passes, from measured FLOPs, and the raw GFLOPs.

    Measured once per (model, scorer, resolution) with one latent / image of the run's size;
    the result is cached for the process.
    """
    key = (id(model), id(scorer), model.height, model.width)
    if key in _CACHE:
        return _CACHE[key]
    latents = model.initial_latents([0])
    t = model.make_scheduler(2).timesteps[0]
    cond = model.encode([""])
    meter, model.meter = model.meter, CostMeter()  # measuring is not part of any run's cost
    try:
        unet = count_flops(lambda: model._unet(latents, t, cond))  # the adapter's own denoiser call
        decode = count_flops(lambda: model.decode(latents))
    finally:
        model.meter = meter
    image = torch.zeros(1, 3, model.height, model.width, device=model.device)
    score = count_flops(lambda: scorer.encode_images(image))
    if unet <= 0:  # nothing counted (an exotic backend): count denoiser passes only, and say so
        log.warning("could not measure the UNet's FLOPs: decode and scoring are not counted in the cost")
        result = (0.0, 0.0, {})
    else:
        gflops = {"unet": unet / 1e9, "decode": decode / 1e9, "score": score / 1e9}
        result = (decode / unet, score / unet, {k: round(v, 3) for k, v in gflops.items()})
    _CACHE[key] = result
    return result
