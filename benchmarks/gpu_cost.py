"""GPU cost of DPO-Diff on SD-1.5-, SDXL-, SD3.5-medium- and FLUX.1-schnell-sized models, built from
their published configs with seeded random weights (cost does not depend on the weights: nothing is
downloaded). FLUX rows run as schnell is run: no classifier-free guidance, the synonym space.

For each model it measures, at the model's native resolution (512 px SD-1.5, 1024 px SDXL) in
fp16 unless told otherwise (1024 px for SD3.5 and FLUX):
  - one gradient iteration of the shortcut estimator at several step counts, and of the full
    estimator without and with checkpointing (rows that run out of memory say "OOM"),
  - one EPO generation (``--population`` candidates) evaluated batched vs one at a time,
  - whole EPO and hybrid runs (the solvers' defaults, ``--budget`` denoiser passes),
reporting peak GPU memory (``torch.cuda.max_memory_allocated`` per row) and seconds; rows of one
model are measured side by side in one process, so ratios between them are what to compare
across machines. On a CPU there is no peak-memory counter: the table shows "-" there, and
``--quick`` runs everything at a small resolution with few steps so that a test exercises it.

Memory savers that keep results exact are on by default: PyTorch SDPA attention (diffusers'
default processor), sampling without autograd, VAE decoding in slices of 8 images, and batched
candidate evaluation (``--eval-batch``). The SD-1.5 preset samples with DDIM (the release ships
PNDM, which makes one more UNet call per run).

    python benchmarks/gpu_cost.py --device cuda                       # SD-1.5 512 px, SDXL, SD3.5, FLUX 1024 px
    python benchmarks/gpu_cost.py --device cuda --models sd15 --steps 20,50
    python benchmarks/gpu_cost.py --device cuda --models sd35,flux --steps 4,28 --full-steps 4
    python benchmarks/gpu_cost.py --quick                             # CPU: SD-1.5 config at 64 px, tiny-sdxl,
                                                                      #      tiny-sd3, tiny-flux
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore", category=UserWarning, module=r"nltk\..*")

import torch  # noqa: E402

import dpo_diff  # noqa: E402
from dpo_diff.cost import CostMeter  # noqa: E402
from dpo_diff.models import resolve_device  # noqa: E402
from dpo_diff.estimators import FullEstimator, ShortcutEstimator  # noqa: E402
from dpo_diff.objectives import ClipLoss  # noqa: E402
from dpo_diff.problem import Problem  # noqa: E402
from dpo_diff.relaxation import RelaxedChoice, encode_relaxed, tokenize_space  # noqa: E402
from dpo_diff.sampling import SamplingConfig  # noqa: E402
from dpo_diff.spaces import build_space  # noqa: E402

PROMPT = "a red car parked on a quiet street"
MODELS = {"sd15": "sd15-random", "sdxl": "sdxl-random", "sd35": "sd35-random", "flux": "flux-random"}
QUICK_MODELS = {"sd15": ("sd15-random", 64), "sdxl": ("tiny-sdxl", None), "sd35": ("tiny-sd3", None),
                "flux": ("tiny-flux", None)}
# FLUX.1-schnell runs without classifier-free guidance: one transformer pass per step, the prompt's
# own words (synonym space) since a negative prompt does not act; the others as usual (guidance 7.5,
# negative-prompt space).
GUIDANCE = {"flux": 1.0}
SPACE = {"flux": "synonym"}


class Meter:
    """Seconds and peak device memory of one measured block."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start
        self.peak_mib = torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None
        return False


OOM_SIGNS = ("out of memory", "cublas_status_alloc_failed", "cudnn_status_alloc_failed", "cudnn_status_not_supported")


def _oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or any(sign in str(err).lower() for sign in OOM_SIGNS)


def gradient_row(engine, tspace, objective, estimator, steps: int, t: int, repeats: int, guidance: float = 7.5) -> dict:
    model = engine.model
    sampling = SamplingConfig((0,), steps=steps, guidance=guidance)
    runs = []
    for _ in range(repeats + (1 if repeats > 1 else 0)):  # the first of several runs warms up
        model.meter = CostMeter(recompute=model.checkpointed)
        relaxed = RelaxedChoice(tspace.mask)
        weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(0))
        with Meter(model.device) as m:
            loss = estimator.loss(model, sampling, objective, lambda: encode_relaxed(model, tspace, weights), t)
            loss.backward()
        del loss
        runs.append(m)
    runs = runs[1:] if len(runs) > 1 else runs
    return {
        "seconds": statistics.median(r.seconds for r in runs),
        "peak_mib": runs[0].peak_mib,
        "unet_passes": model.meter.used,
    }


def generation_row(engine, space, objective, steps: int, population: int, batch: int, warm_up: bool = True,
                   guidance: float = 7.5) -> dict:
    """One EPO generation: ``population`` new candidates evaluated ``batch`` at a time."""
    model = engine.model
    model.meter = CostMeter()
    sampling = SamplingConfig((0,), steps=steps, guidance=guidance, timesteps=model.timestep_count(steps))
    problem = Problem(model, space, objective, sampling, eval_batch_size=batch, seed=1)
    choices = list(dict.fromkeys(problem.random_choice() for _ in range(population * 4)))[:population]
    if warm_up:
        problem.evaluate(choices[:1])
        problem.evaluated.clear()
        model.meter = CostMeter()
    with Meter(model.device) as m:
        problem.evaluate(choices)
    return {"seconds": m.seconds, "peak_mib": m.peak_mib, "unet_passes": model.meter.used, "candidates": len(choices)}


def run_row(engine, solver: str, steps: int, budget: int, guidance: float = 7.5, space: str = "antonym+nplib") -> dict:
    with Meter(engine.model.device) as m:
        result = dpo_diff.enhance(PROMPT, model=engine, solver=solver, steps=steps, budget=budget, seeds=1,
                                  guidance=guidance, space=space)
    return {"seconds": m.seconds, "peak_mib": m.peak_mib, "unet_passes": result.cost}


def measure(name: str, preset: str, resolution: int | None, args, dtype: torch.dtype) -> list[dict]:
    started = time.perf_counter()
    engine = dpo_diff.load(preset, device=args.device, dtype=dtype)
    model = engine.model
    if resolution:
        model.set_resolution(resolution)
    print(f"# {name}: {preset} at {model.height}px, {str(dtype).replace('torch.', '')}, "
          f"built in {time.perf_counter() - started:.0f} s", flush=True)
    guidance, kind = GUIDANCE.get(name, 7.5), SPACE.get(name, "antonym+nplib")
    space = build_space(PROMPT, kind, token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    objective = ClipLoss(engine.scorer, PROMPT)
    rows: list[dict] = []

    def add(what: str, steps: int | None, fn) -> None:
        row = {"model": name, "resolution": model.height, "what": what, "steps": steps}
        try:
            row.update(fn())
        except Exception as err:  # noqa: BLE001 - an out-of-memory row is a result, anything else is not
            if not _oom(err):
                raise
            row.update({"seconds": None, "peak_mib": None, "unet_passes": None, "oom": True})
            torch.cuda.empty_cache()
        rows.append(row)
        print("  " + format_row(row), flush=True)

    for steps in args.steps:
        add("shortcut grad", steps, lambda: gradient_row(engine, tspace, objective, ShortcutEstimator(1), steps, args.t, args.repeats, guidance))
    for steps in args.full_steps:
        add("full grad", steps, lambda: gradient_row(engine, tspace, objective, FullEstimator(), steps, args.t, args.repeats, guidance))
        add("full grad (checkpoint)", steps,
            lambda: gradient_row(engine, tspace, objective, FullEstimator(checkpoint=True), steps, args.t, args.repeats,
                                 guidance))
    add(f"EPO generation, batch {args.eval_batch}", args.eval_steps,
        lambda: generation_row(engine, space, objective, args.eval_steps, args.population, args.eval_batch, not args.quick,
                               guidance))
    add("EPO generation, one at a time", args.eval_steps,
        lambda: generation_row(engine, space, objective, args.eval_steps, args.population, 1, not args.quick, guidance))
    for solver in ("epo", "hybrid"):
        add(f"{solver} run, budget {args.budget}", args.eval_steps, lambda: run_row(engine, solver, args.eval_steps, args.budget, guidance, kind))
    # the memory saver of the grad step: checkpointing inside the denoiser (same gradient, one recompute counted)
    model.enable_checkpointing()
    for steps in args.steps[-1:]:
        add("shortcut grad, denoiser checkpointed", steps,
            lambda: gradient_row(engine, tspace, objective, ShortcutEstimator(1), steps, args.t, args.repeats, guidance))
    del engine, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return rows


def format_row(r: dict) -> str:
    if r.get("oom"):
        return f"{r['model']:<5} {r['what']:<36} {r['steps'] or '':>5} {'OOM':>9} {'OOM':>10} {'':>6}"
    peak = f"{r['peak_mib'] / 1024:10.2f}" if r["peak_mib"] is not None else f"{'-':>10}"
    return f"{r['model']:<5} {r['what']:<36} {r['steps'] or '':>5} {r['seconds']:9.3f} {peak} {r['unet_passes']:>6.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="sd15,sdxl,sd35,flux", help="any of sd15, sdxl, sd35, flux (comma-separated)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, choices=["fp16", "bf16", "fp32"], help="default: fp16 on GPU, fp32 on CPU")
    parser.add_argument("--resolution", type=int, default=None, help="default: the model's (512 / 1024)")
    parser.add_argument("--steps", default="20,50,100", help="step counts for the shortcut")
    parser.add_argument("--full-steps", default="20,50", help="step counts for the full estimator")
    parser.add_argument("--eval-steps", type=int, default=50, help="sampling steps of EPO / whole runs")
    parser.add_argument("--population", type=int, default=20, help="candidates in one EPO generation (EPO's default)")
    parser.add_argument("--eval-batch", type=int, default=8)
    parser.add_argument("--budget", type=int, default=4000, help="denoiser passes of each whole run")
    parser.add_argument("--t", type=int, default=25, help="t_i of the shortcut, out of 50")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="CPU smoke run: 64 px SD-1.5 config, tiny-sdxl, tiny-sd3, tiny-flux, 2-4 steps")
    parser.add_argument("--json", default="benchmarks/results/gpu_cost.json")
    args = parser.parse_args(argv)
    ints = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    args.steps, args.full_steps = ints(args.steps), ints(args.full_steps)
    if not args.steps:
        parser.error("--steps needs at least one step count")
    if args.quick:
        args.steps, args.full_steps, args.eval_steps = [2, 4], [2], 2
        args.population, args.eval_batch, args.budget, args.repeats = 4, 4, 40, 1
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # peak-memory counters and timers read the current device
    args.device = str(device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}.get(
        args.dtype, torch.float16 if device.type == "cuda" else torch.float32
    )
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}: use sd15, sdxl, sd35, flux")

    where = str(device) + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
    print(f"DPO-Diff cost on {where}; peak = max GPU memory allocated in the row (GiB)")
    header = f"{'model':<5} {'what':<36} {'steps':>5} {'seconds':>9} {'peak GiB':>10} {'passes':>6}"
    print(header)
    print("-" * len(header))
    rows = []
    for name in names:
        preset, resolution = QUICK_MODELS[name] if args.quick else (MODELS[name], args.resolution)
        rows += measure(name, preset, resolution, args, dtype)
    for r in rows:  # ratios against the same model's first shortcut row
        base = next(b for b in rows if b["model"] == r["model"] and b["what"] == "shortcut grad")
        for key in ("seconds", "peak_mib"):
            ok = r.get(key) is not None and base.get(key)
            r[f"{key}_x_shortcut"] = r[key] / base[key] if ok else None
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": where, "dtype": str(dtype), "quick": args.quick, "rows": rows}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
