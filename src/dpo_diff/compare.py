"""Solvers and spaces compared at equal cost: the paper's Fig. 3 and Table 2, as a table and a plot.

Every (space, solver, budget) runs on the same prompts and seeds. Reported per cell: the mean
best loss and the mean change against the initial prompt on the search seeds and on held-out
seeds the search never saw, and — when the model is the bundled world and the prompt is a
world caption — the pixel judge's faithfulness of the best images on the held-out seeds,
which, unlike the CLIP loss, is not what the solvers optimized. Every two configurations are
compared prompt by prompt (wins, ties, a paired bootstrap interval; :mod:`dpo_diff.stats`).
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .api import optimize
from .config import RunConfig, resolve_config
from .engine import Engine, load_for
from .objectives import get_objective
from .spaces import LLMConfig
from .stats import paired, sem
from .task import get_task


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def compare(
    prompts: Sequence[str],
    solvers: Sequence[str] = ("random", "hybrid"),
    budgets: Sequence[int] = (800, 1600, 3200),
    spaces: Sequence[str | None] = (None,),
    task: str = "enhance",
    model: str | Engine | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    search_seeds: int = 1,
    config: RunConfig | None = None,
    llm: LLMConfig | None = None,
    **options,
) -> dict:
    """Run the grid and return {"runs": [...], "summary": [...], "pairs": [...]} (see module doc).

    Each cell runs every prompt ``search_seeds`` times (search seeds ``seed``, ``seed`` + 1, ...).
    Held-out figures (``eval_seeds``, default 4 new seeds) are averaged over the search seeds
    per prompt, then over prompts; ``pairs`` compares every two (space, solver) configurations
    at each budget prompt by prompt on the held-out loss. ``config`` and ``options`` are the
    other options of every run (:class:`RunConfig`).
    """
    if model is not None and not isinstance(model, Engine):
        options["model"] = model
    cfg = resolve_config(config, options)
    engine = model if isinstance(model, Engine) else load_for(cfg)
    if search_seeds < 1:
        raise ValueError("search_seeds must be at least 1")
    base_seed = cfg.seed
    lower = get_objective(cfg.objective).lower_is_better
    grid = [(sp, so, b) for sp in spaces for so in solvers for b in budgets]
    runs, total, done = [], len(grid) * len(prompts) * search_seeds, 0
    for space, solver, budget in grid:
        for prompt in prompts:
            for r in range(search_seeds):
                if progress:
                    kind = space or get_task(task).default_space
                    progress(done, total, f"{kind} / {solver} / budget {budget}")
                start = time.perf_counter()
                run_config = cfg.replace(solver=solver, budget=budget, space=space, seed=base_seed + r)
                result = optimize(task, prompt, run_config, model=engine, llm=llm)
                held = result.held_out
                runs.append({
                    "space": result.space.kind, "solver": solver, "budget": budget, "prompt": prompt,
                    "search_seed": base_seed + r,
                    "initial_loss": result.initial.loss, "best_loss": result.best.loss, "cost": result.cost,
                    "best_prompt": result.best.prompt, "best_negative_prompt": result.best.negative_prompt,
                    "initial_faithfulness": result.initial_faithfulness,
                    "best_faithfulness": result.best_faithfulness,
                    "held_out_seeds": held.seeds if held else None,
                    "held_out_initial_loss": held.initial.loss if held else None,
                    "held_out_best_loss": held.best.loss if held else None,
                    "held_out_initial_faithfulness": held.initial.faithfulness if held else None,
                    "held_out_best_faithfulness": held.best.faithfulness if held else None,
                    "held_out_cost": held.cost if held else None,
                    "seconds": round(time.perf_counter() - start, 3),
                })
                done += 1
    if progress:
        progress(done, total, "done")
    summary = [summarize_cell(runs, space, solver, budget, task, lower) for space, solver, budget in grid]
    shown = {k: v for k, v in cfg.to_dict().items() if k not in ("model", "solver", "budget", "space", "device")}
    if llm is not None:
        shown["llm"] = _plain(llm)
    return {"task": task, "model": engine.name, "search_seeds": search_seeds, "objective": cfg.objective,
            "lower_is_better": lower, "options": shown,
            "runs": runs, "summary": summary, "pairs": pair_table(runs, task, lower)}


def _per_prompt(cell: list[dict], key: str) -> list[float]:
    """``key`` averaged over search seeds, per prompt (prompts in first-seen order); None values skipped."""
    by_prompt: dict[str, list[float]] = {}
    for r in cell:
        if r.get(key) is not None:
            by_prompt.setdefault(r["prompt"], []).append(r[key])
    return [statistics.fmean(v) for v in by_prompt.values()]


def summarize_cell(runs: list[dict], space, solver: str, budget: int, task: str, lower_is_better: bool = True) -> dict:
    """Means over prompts (each prompt first averaged over its search seeds), with standard errors."""
    cell = [r for r in runs if r["solver"] == solver and r["budget"] == budget and (space is None or r["space"] == space)]
    sign = get_task(task).sign(lower_is_better)
    for r in cell:
        r["change"] = sign * (r["initial_loss"] - r["best_loss"])
        if r.get("held_out_best_loss") is not None:
            r["held_out_change"] = sign * (r["held_out_initial_loss"] - r["held_out_best_loss"])
    best, change = _per_prompt(cell, "best_loss"), _per_prompt(cell, "change")
    faith, faith0 = _per_prompt(cell, "best_faithfulness"), _per_prompt(cell, "initial_faithfulness")
    h_best, h_change = _per_prompt(cell, "held_out_best_loss"), _per_prompt(cell, "held_out_change")
    h_faith, h_faith0 = _per_prompt(cell, "held_out_best_faithfulness"), _per_prompt(cell, "held_out_initial_faithfulness")
    return {
        "space": cell[0]["space"], "solver": solver, "budget": budget, "prompts": len(best),
        "search_seeds": len({r["search_seed"] for r in cell}),
        "best_loss": _mean(best), "best_loss_sem": sem(best),
        "change": _mean(change), "change_sem": sem(change),
        "cost": statistics.fmean(r["cost"] for r in cell),
        "faithfulness": _mean(faith), "faithfulness_sem": sem(faith) if faith else None,
        "initial_faithfulness": _mean(faith0),
        "held_out_best_loss": _mean(h_best), "held_out_best_loss_sem": sem(h_best) if h_best else None,
        "held_out_change": _mean(h_change), "held_out_change_sem": sem(h_change) if h_change else None,
        "held_out_improved": sum(c > 1e-9 for c in h_change) / len(h_change) if h_change else None,
        "held_out_faithfulness": _mean(h_faith), "held_out_faithfulness_sem": sem(h_faith) if h_faith else None,
        "held_out_initial_faithfulness": _mean(h_faith0),
        "held_out_cost": _mean([r["held_out_cost"] for r in cell if r.get("held_out_cost") is not None]),
    }


def pair_table(runs: list[dict], task: str, lower_is_better: bool = True) -> list[dict]:
    """Every two (space, solver) configurations at each budget, prompt by prompt, on the held-out
    best loss (the search's own best loss when held-out evaluation was off)."""
    held = any(r.get("held_out_best_loss") is not None for r in runs)
    key = "held_out_best_loss" if held else "best_loss"
    pairs = []
    for budget in sorted({r["budget"] for r in runs}):
        configs = list(dict.fromkeys((r["space"], r["solver"]) for r in runs if r["budget"] == budget))
        losses = {}
        for space, solver in configs:
            cell = [r for r in runs if r["budget"] == budget and r["space"] == space and r["solver"] == solver]
            by_prompt: dict[str, list[float]] = {}
            for r in cell:
                by_prompt.setdefault(r["prompt"], []).append(r[key])
            losses[(space, solver)] = {p: statistics.fmean(v) for p, v in by_prompt.items()}
        label = (lambda c: c[1]) if len({c[0] for c in configs}) == 1 else (lambda c: f"{c[0]} / {c[1]}")
        for a, b in itertools.combinations(configs, 2):
            shared = [p for p in losses[a] if p in losses[b]]
            comparison = paired(label(a), [losses[a][p] for p in shared], label(b), [losses[b][p] for p in shared],
                                maximize=not get_task(task).minimizes(lower_is_better))
            pairs.append({"budget": budget, "measure": key, **comparison.to_dict()})
    return pairs


def _pm(value, err, fmt: str = ".4f", signed: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value:+{fmt}}" if signed else f"{value:{fmt}}"
    return text + (f" ± {err:{fmt}}" if err is not None else "")


def _plain(value):
    """An option as JSON can hold it: an LLM endpoint as its URL and model (never its key)."""
    if isinstance(value, LLMConfig):
        return {"base_url": value.base_url, "model": value.model}
    return value


def to_markdown(report: dict) -> str:
    better = get_task(report["task"]).goal(report.get("lower_is_better", True))
    seeds = report.get("search_seeds", 1)
    lines = [
        f"{report['task']} on {report['model']}: mean over prompts (± standard error)"
        + (f", each prompt averaged over {seeds} search seeds" if seeds > 1 else "")
        + f". Loss: {better} is the goal; change: in the task's direction, positive is better.",
        "",
        "| space | solver | budget | prompts | best loss (search) | change (search) | best loss (held-out) "
        "| change (held-out) | held-out improved | judged faithfulness, held-out (initial -> best) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report["summary"]:
        if s.get("held_out_faithfulness") is not None:
            faith = (f"{100 * s['held_out_initial_faithfulness']:.1f} % -> {100 * s['held_out_faithfulness']:.1f} "
                     f"± {100 * s['held_out_faithfulness_sem']:.1f} %")
        elif s["faithfulness"] is not None:
            faith = (f"{100 * s['initial_faithfulness']:.1f} % -> {100 * s['faithfulness']:.1f} "
                     f"± {100 * s['faithfulness_sem']:.1f} % (search seeds)")
        else:
            faith = "-"
        improved = "-" if s.get("held_out_improved") is None else f"{100 * s['held_out_improved']:.0f} %"
        lines.append(
            f"| {s['space']} | {s['solver']} | {s['budget']} | {s['prompts']} | {_pm(s['best_loss'], s['best_loss_sem'])} "
            f"| {_pm(s['change'], s['change_sem'], signed=True)} "
            f"| {_pm(s.get('held_out_best_loss'), s.get('held_out_best_loss_sem'))} "
            f"| {_pm(s.get('held_out_change'), s.get('held_out_change_sem'), signed=True)} | {improved} | {faith} |"
        )
    pairs = report.get("pairs") or []
    if pairs:
        what = "held-out" if pairs[0]["measure"] == "held_out_best_loss" else "search-seed"
        lines += [
            "",
            f"Paired, prompt by prompt, on the {what} best loss: wins of A / of B / ties, and the mean "
            "difference (positive: A better) with its 95 % bootstrap interval.",
            "",
            "| budget | A | B | prompts | A wins | B wins | ties | mean difference [95 % CI] |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in pairs:
            star = " *" if p["significant"] else ""
            lines.append(
                f"| {p['budget']} | {p['a']} | {p['b']} | {p['n']} | {p['a_wins']} | {p['b_wins']} | {p['ties']} "
                f"| {p['mean_difference']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}]{star} |"
            )
        lines.append("")
        lines.append("* the interval excludes 0.")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    held = any(s.get("held_out_change") is not None for s in report["summary"])
    change, faith = ("held_out_change", "held_out_faithfulness") if held else ("change", "faithfulness")
    has_judge = any(s.get(faith) is not None for s in report["summary"])
    fig, axes = plt.subplots(1, 2 if has_judge else 1, figsize=(10 if has_judge else 5.5, 4), squeeze=False)
    keys = sorted({(s["space"], s["solver"]) for s in report["summary"]})
    budgets = sorted({s["budget"] for s in report["summary"]})
    step = (min(b - a for a, b in zip(budgets, budgets[1:])) if len(budgets) > 1 else max(budgets[0], 1)) * 0.04
    markers, styles = "osD^vP*X", ("-", "--", "-.", ":")
    for i, (space, solver) in enumerate(keys):
        cells = sorted((s for s in report["summary"] if s["space"] == space and s["solver"] == solver), key=lambda s: s["budget"])
        label = solver if len({k[0] for k in keys}) == 1 else f"{space} / {solver}"
        # equal lines must stay visible: each configuration is nudged sideways and has its own marker and dash
        x = [s["budget"] + (i - (len(keys) - 1) / 2) * step for s in cells]
        style = dict(marker=markers[i % len(markers)], linestyle=styles[i % len(styles)], capsize=3, label=label,
                     alpha=0.85)
        axes[0][0].errorbar(x, [s[change] for s in cells], yerr=[s[change + "_sem"] for s in cells], **style)
        if has_judge:
            axes[0][1].errorbar(x, [100 * s[faith] for s in cells], yerr=[100 * s[faith + "_sem"] for s in cells],
                                **style)
    where = "held-out seeds" if held else "search seeds"
    axes[0][0].set_xlabel("budget (denoiser-pass equivalents)")
    axes[0][0].set_ylabel(f"mean CLIP loss change, {where} (task direction)")
    axes[0][0].legend(fontsize=7)
    if has_judge:
        axes[0][1].set_xlabel("budget (denoiser-pass equivalents)")
        axes[0][1].set_ylabel(f"judged faithfulness of best images, {where} (%)")
    fig.suptitle(f"{report['task']} on {report['model']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(report: dict, out: str | Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "compare.md").write_text(to_markdown(report))
    return [out / "compare.json", out / "compare.md", plot(report, out / "compare.png")]
