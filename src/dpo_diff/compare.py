"""Solvers and spaces compared at equal cost: the paper's Fig. 3 and Table 2, as a table and a plot.

Every (space, solver, budget) runs on the same prompts and seeds. Reported per cell: the mean
best loss and the mean change against the initial prompt, and — when the model is the
bundled world and the prompt is a world caption — the pixel judge's faithfulness of the best
images, which, unlike the CLIP loss, is not what the solvers optimized.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .api import Engine, load, optimize
from .spaces import LLMConfig


def _sem(values: list[float]) -> float:
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0


def _judge(engine: Engine, prompt: str):
    """faithfulness(images) for world prompts on the world model, else None."""
    if engine.name != "world":
        return None
    from .world.judge import faithfulness
    from .world.parse import parse_prompt

    scene = parse_prompt(prompt)
    if scene is None:
        return None
    return lambda images: statistics.fmean(faithfulness(im.permute(1, 2, 0).numpy(), scene) for im in images)


def compare(
    prompts: Sequence[str],
    solvers: Sequence[str] = ("random", "hybrid"),
    budgets: Sequence[int] = (800, 1600, 3200),
    spaces: Sequence[str | None] = (None,),
    task: str = "enhance",
    model: str | Engine | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    **options,
) -> dict:
    """Run the grid and return {"runs": [...], "summary": [...]} (see module doc)."""
    engine = model if isinstance(model, Engine) else load(model)
    grid = [(sp, so, b) for sp in spaces for so in solvers for b in budgets]
    runs, total, done = [], len(grid) * len(prompts), 0
    for space, solver, budget in grid:
        for prompt in prompts:
            if progress:
                progress(done, total, f"{space or 'default'}/{solver}/{budget}")
            start = time.perf_counter()
            result = optimize(task, prompt, model=engine, solver=solver, budget=budget, space=space, **options)
            judge = _judge(engine, prompt)
            runs.append({
                "space": result.space.kind, "solver": solver, "budget": budget, "prompt": prompt,
                "initial_loss": result.initial.loss, "best_loss": result.best.loss, "cost": result.cost,
                "best_prompt": result.best.prompt, "best_negative_prompt": result.best.negative_prompt,
                "initial_faithfulness": judge(result.initial_images) if judge else None,
                "best_faithfulness": judge(result.best_images) if judge else None,
                "seconds": round(time.perf_counter() - start, 3),
            })
            done += 1
    if progress:
        progress(done, total, "done")
    sign = 1.0 if task == "enhance" else -1.0
    summary = []
    for space, solver, budget in grid:
        cell = [r for r in runs if r["solver"] == solver and r["budget"] == budget and (space is None or r["space"] == space)]
        best = [r["best_loss"] for r in cell]
        change = [sign * (r["initial_loss"] - r["best_loss"]) for r in cell]
        faith = [r["best_faithfulness"] for r in cell if r["best_faithfulness"] is not None]
        faith0 = [r["initial_faithfulness"] for r in cell if r["initial_faithfulness"] is not None]
        summary.append({
            "space": cell[0]["space"], "solver": solver, "budget": budget, "prompts": len(cell),
            "best_loss": statistics.fmean(best), "best_loss_sem": _sem(best),
            "change": statistics.fmean(change), "change_sem": _sem(change),
            "cost": statistics.fmean(r["cost"] for r in cell),
            "faithfulness": statistics.fmean(faith) if faith else None, "faithfulness_sem": _sem(faith) if faith else None,
            "initial_faithfulness": statistics.fmean(faith0) if faith0 else None,
        })
    return {"task": task, "model": engine.name, "options": {k: _plain(v) for k, v in options.items() if k != "progress"},
            "runs": runs, "summary": summary}


def _plain(value):
    """An option as JSON can hold it: an LLM endpoint as its URL and model (never its key)."""
    if isinstance(value, LLMConfig):
        return {"base_url": value.base_url, "model": value.model}
    return value


def to_markdown(report: dict) -> str:
    lines = [
        f"{report['task']} on {report['model']}: mean over prompts (± standard error)",
        "",
        "| space | solver | budget | prompts | best loss | change | judged faithfulness (initial -> best) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report["summary"]:
        faith = "-" if s["faithfulness"] is None else (
            f"{100 * s['initial_faithfulness']:.1f} % -> {100 * s['faithfulness']:.1f} ± {100 * s['faithfulness_sem']:.1f} %")
        lines.append(
            f"| {s['space']} | {s['solver']} | {s['budget']} | {s['prompts']} | {s['best_loss']:.4f} ± {s['best_loss_sem']:.4f} "
            f"| {s['change']:+.4f} ± {s['change_sem']:.4f} | {faith} |"
        )
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_judge = any(s["faithfulness"] is not None for s in report["summary"])
    fig, axes = plt.subplots(1, 2 if has_judge else 1, figsize=(10 if has_judge else 5.5, 4), squeeze=False)
    keys = sorted({(s["space"], s["solver"]) for s in report["summary"]})
    for space, solver in keys:
        cells = sorted((s for s in report["summary"] if s["space"] == space and s["solver"] == solver), key=lambda s: s["budget"])
        label = solver if len({k[0] for k in keys}) == 1 else f"{space} / {solver}"
        x = [s["budget"] for s in cells]
        axes[0][0].errorbar(x, [s["change"] for s in cells], yerr=[s["change_sem"] for s in cells], marker="o", capsize=3, label=label)
        if has_judge:
            axes[0][1].errorbar(x, [100 * s["faithfulness"] for s in cells],
                                yerr=[100 * s["faithfulness_sem"] for s in cells], marker="o", capsize=3, label=label)
    axes[0][0].set_xlabel("budget (UNet passes)")
    axes[0][0].set_ylabel("mean CLIP loss change (task direction)")
    axes[0][0].legend(fontsize=7)
    if has_judge:
        axes[0][1].set_xlabel("budget (UNet passes)")
        axes[0][1].set_ylabel("judged faithfulness of best images (%)")
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
