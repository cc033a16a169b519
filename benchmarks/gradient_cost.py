"""Cost of one text-gradient estimate: shortcut vs full backprop (with and without checkpointing).

For each number of sampling steps, runs one gradient iteration of each estimator on the same
prompt, seed and relaxed choice, and reports:
  - time per iteration (median of --repeats runs),
  - memory: on CUDA the peak allocated memory; everywhere, "held MiB", the bytes autograd holds
    from the forward to the backward pass (saved-tensor hooks; deterministic, machine-independent).
    With checkpointing the backward also recomputes one step at a time, whose activations
    (about one UNet step's worth, as the shortcut holds) come on top of its held figure,
  - UNet passes counted by dpo-diff's cost meter.
Ratios are against the shortcut estimator, measured side by side in the same run.

With ``--cosine`` it also reports gradient *quality*: the cosine between the shortcut gradient
(K = 1, at each t_i) and the full-backprop gradient of the same relaxed sample, per t_i and
search space, mean ± standard error over prompts and seeds (default: the bundled world, its
held-out prompts, 10 steps). Cosine 1: the shortcut points where the full gradient does.

    python benchmarks/gradient_cost.py                  # tiny preset, 5/10/20/50 steps
    python benchmarks/gradient_cost.py --quick          # CI: 5/10 steps, 1 repeat
    python benchmarks/gradient_cost.py --cosine         # + shortcut-vs-full cosine per t_i and space
    python benchmarks/gradient_cost.py --model stable-diffusion-v1-5/stable-diffusion-v1-5 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import warnings  # noqa: E402

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore", category=UserWarning, module=r"nltk\..*")

import torch  # noqa: E402

import dpo_diff  # noqa: E402
from dpo_diff.cost import CostMeter  # noqa: E402
from dpo_diff.estimators import FullEstimator, ShortcutEstimator  # noqa: E402
from dpo_diff.objectives import ClipLoss  # noqa: E402
from dpo_diff.relaxation import RelaxedChoice, encode_relaxed, tokenize_space  # noqa: E402
from dpo_diff.sampling import SamplingConfig  # noqa: E402
from dpo_diff.spaces import build_space  # noqa: E402

PROMPT = "a red car parked on a quiet street"
ESTIMATORS = {
    "shortcut": lambda: ShortcutEstimator(1),
    "full": lambda: FullEstimator(checkpoint=False),
    "full-checkpoint": lambda: FullEstimator(checkpoint=True),
}


def one_iteration(engine, tspace, objective, estimator, steps: int, t: int) -> dict:
    model = engine.model
    model.meter = CostMeter()
    relaxed = RelaxedChoice(tspace.mask)
    weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(0))
    sampling = SamplingConfig((0,), steps=steps, guidance=7.5)
    saved = 0

    def pack(x):
        nonlocal saved
        saved += x.numel() * x.element_size()
        return x

    cuda = model.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        loss = estimator.loss(model, sampling, objective, lambda: encode_relaxed(model, tspace, weights), t)
    loss.backward()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "held_mib": saved / 2**20,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "unet_passes": model.meter.used,
    }


COSINE_SPACES = ("antonym", "nplib", "antonym+nplib", "synonym")


def _grad(model, tspace, objective, estimator, sampling, t, seed: int) -> torch.Tensor:
    relaxed = RelaxedChoice(tspace.mask)
    weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(seed))
    loss = estimator.loss(model, sampling, objective, lambda: encode_relaxed(model, tspace, weights), t)
    (g,) = torch.autograd.grad(loss, relaxed.logits)
    return g[tspace.mask]


def gradient_cosines(model_name: str, prompts: list[str], spaces, ts, steps: int, seeds: int, device=None) -> list[dict]:
    """Cosine(shortcut at t_i, full backprop) per (space, t_i): mean and standard error over prompts x seeds."""
    engine = dpo_diff.load(model_name, device=device)
    model = engine.model
    rows = []
    for kind in spaces:
        per_t: dict[int, list[float]] = {t: [] for t in ts}
        for prompt in prompts:
            space = build_space(prompt, kind, token_ids=model.word_token_ids)
            if space.is_empty:
                continue
            tspace = tokenize_space(space, model)
            objective = ClipLoss(engine.scorer, prompt)
            for seed in range(seeds):
                sampling = SamplingConfig((seed,), steps=steps, guidance=7.5)
                full = _grad(model, tspace, objective, FullEstimator(), sampling, 0, seed)
                for t in ts:
                    short = _grad(model, tspace, objective, ShortcutEstimator(1), sampling, t, seed)
                    cos = torch.nn.functional.cosine_similarity(short, full, dim=0, eps=1e-12)
                    per_t[t].append(float(cos))
        for t in ts:
            values = per_t[t]
            if values:
                sem = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
                rows.append({"space": kind, "t": t, "n": len(values), "cosine": statistics.fmean(values), "sem": sem})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", default="5,10,20,50")
    parser.add_argument("--t", type=int, default=25, help="t_i of the shortcut, out of 50")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5 and 10 steps, one repeat (for CI)")
    parser.add_argument("--json", default="benchmarks/results/gradient_cost.json")
    parser.add_argument("--cosine", action="store_true", help="also: cosine of shortcut vs full gradient")
    parser.add_argument("--cosine-model", default="world")
    parser.add_argument("--cosine-prompts", default="benchmarks/prompts/world_heldout.txt")
    parser.add_argument("--cosine-limit", type=int, default=8, help="prompts for the cosine table")
    parser.add_argument("--cosine-steps", type=int, default=10)
    parser.add_argument("--cosine-t", default="5,10,15,20,25,35,45", help="t_i values, out of 50")
    parser.add_argument("--cosine-seeds", type=int, default=2)
    parser.add_argument("--cosine-only", action="store_true", help="skip the time and memory table")
    args = parser.parse_args(argv)
    if args.cosine or args.cosine_only:
        from dpo_diff.batch import load_prompts

        prompts = [r.text for r in load_prompts(args.cosine_prompts, limit=args.cosine_limit)]
        ts = [int(t) for t in args.cosine_t.split(",")]
        cosines = gradient_cosines(args.cosine_model, prompts, COSINE_SPACES, ts, args.cosine_steps,
                                   args.cosine_seeds, args.device)
        print(f"cosine(shortcut K=1 at t_i, full backprop) - model {args.cosine_model}, {len(prompts)} prompts x "
              f"{args.cosine_seeds} seeds, {args.cosine_steps} steps, guidance 7.5; mean ± standard error")
        print(f"{'space':<15} " + " ".join(f"{'t=' + str(t):>14}" for t in ts))
        for kind in COSINE_SPACES:
            cells = {r["t"]: r for r in cosines if r["space"] == kind}
            print(f"{kind:<15} " + " ".join(
                f"{cells[t]['cosine']:+.2f} ± {cells[t]['sem']:.2f}".rjust(14) if t in cells else f"{'-':>14}" for t in ts))
        cos_path = Path(args.json).with_name("gradient_cosine.json")
        cos_path.parent.mkdir(parents=True, exist_ok=True)
        cos_path.write_text(json.dumps({"model": args.cosine_model, "steps": args.cosine_steps, "rows": cosines}, indent=2))
        print(f"wrote {cos_path}")
        if args.cosine_only:
            return 0
    steps_list = [5, 10] if args.quick else [int(s) for s in args.steps.split(",")]
    repeats = 1 if args.quick else args.repeats

    engine = dpo_diff.load(args.model, device=args.device)
    model = engine.model
    space = build_space(PROMPT, "synonym+antonym", token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    objective = ClipLoss(engine.scorer, PROMPT)

    rows = []
    for steps in steps_list:
        for name, make in ESTIMATORS.items():
            one_iteration(engine, tspace, objective, make(), steps, args.t)  # warm-up
            runs = [one_iteration(engine, tspace, objective, make(), steps, args.t) for _ in range(repeats)]
            rows.append({
                "steps": steps,
                "estimator": name,
                "seconds": statistics.median(r["seconds"] for r in runs),
                "held_mib": runs[0]["held_mib"],
                "peak_mib": runs[0]["peak_mib"],
                "unet_passes": runs[0]["unet_passes"],
            })
    for row in rows:
        base = next(r for r in rows if r["steps"] == row["steps"] and r["estimator"] == "shortcut")
        row["time_ratio"] = row["seconds"] / base["seconds"]
        row["held_ratio"] = row["held_mib"] / base["held_mib"]
        row["peak_ratio"] = row["peak_mib"] / base["peak_mib"] if row["peak_mib"] else None

    device = str(model.device) + (f" ({torch.cuda.get_device_name()})" if model.device.type == "cuda" else "")
    print(f"gradient cost per iteration - model {args.model}, {model.height}px, device {device}, "
          f"t_i={args.t}/50, guidance 7.5, 1 seed, median of {repeats}")
    header = f"{'steps':>5} {'estimator':<16} {'time s':>8} {'x short':>8} {'held MiB':>10} {'x short':>8} {'peak MiB':>9} {'UNet':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        peak = f"{r['peak_mib']:9.1f}" if r["peak_mib"] is not None else f"{'-':>9}"
        print(f"{r['steps']:>5} {r['estimator']:<16} {r['seconds']:8.3f} {r['time_ratio']:8.2f} "
              f"{r['held_mib']:10.2f} {r['held_ratio']:8.2f} {peak} {r['unet_passes']:>6}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": args.model, "device": device, "t": args.t, "rows": rows}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
