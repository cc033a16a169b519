"""Evaluation of batch runs: the paper's Table 1 per source and task, CSV/Markdown, plots,
and re-scoring of the stored images with other scorers."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

from ..errors import DpoDiffError
from ..objectives import get_objective
from ..task import get_task
from .store import ResultStore

COLUMNS = (
    "run", "solver", "source", "task", "prompts", "initial_mean", "initial_std", "best_mean", "best_std",
    "change_mean", "share", "cost_mean",
    "held_out_prompts", "held_out_initial_mean", "held_out_best_mean", "held_out_change_mean", "held_out_change_sem",
    "held_out_share", "held_out_initial_faithfulness", "held_out_best_faithfulness", "held_out_cost_mean",
    "held_out_flagged",
)


def held_out(row: dict) -> dict | None:
    """The held-out block of a stored result (None: evaluated without held-out seeds)."""
    try:
        return json.loads(row["result_json"]).get("held_out")
    except (TypeError, ValueError):
        return None


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def load_runs(folders: list[str | Path]) -> list[tuple[str, dict, list[dict]]]:
    """(name, config, finished rows) of each results folder."""
    runs = []
    for folder in folders:
        store = ResultStore.open_existing(folder)
        try:
            config = store.config() or {}
            runs.append((Path(folder).name, config, store.rows("done")))
        finally:
            store.close()
    return runs


def task_sign(config: dict) -> float:
    """+1 when a lower stored value is progress for the run's task and objective, else -1."""
    lower = get_objective(config.get("objective", "clip")).lower_is_better
    return get_task(config.get("task", "enhance")).sign(lower)


def summarize(runs) -> list[dict]:
    """One row per run x source x task: mean ± std of initial and best loss, mean change in the
    task's direction, share of prompts improved (enhance) or broken (attack), cost per prompt."""
    table = []
    for name, config, rows in runs:
        task = config.get("task", "enhance")
        for source in sorted({r["source"] for r in rows}):
            part = [r for r in rows if r["source"] == source]
            initial = [r["initial_loss"] for r in part]
            best = [r["best_loss"] for r in part]
            sign = task_sign(config)
            changes = [sign * (i - b) for i, b in zip(initial, best)]
            flags = [_search_flag(r, get_task(task)) for r in part]
            (im, isd), (bm, bsd) = _mean_std(initial), _mean_std(best)
            table.append({
                "run": name, "solver": config.get("solver"), "source": source, "task": task,
                "prompts": len(part), "initial_mean": im, "initial_std": isd, "best_mean": bm, "best_std": bsd,
                "change_mean": statistics.fmean(changes), "share": sum(c > 1e-9 and not f for c, f in zip(changes, flags)) / len(changes),
                "cost_mean": statistics.fmean(r["cost"] for r in part),
                **_held_out_summary(part, sign, get_task(task)),
            })
    if not table:
        raise DpoDiffError("no finished prompts to evaluate yet")
    return table


def _search_flag(row: dict, task) -> bool:
    """The judge's flag on the search seeds' pictures (see :meth:`dpo_diff.task.Task.flagged`)."""
    try:
        data = json.loads(row["result_json"])
    except (TypeError, ValueError):
        return False
    return task.flagged(data.get("initial", {}).get("faithfulness"), data.get("best", {}).get("faithfulness"))


def _held_out_summary(rows: list[dict], sign: float, task) -> dict:
    """Held-out means; a prompt counts as improved (enhance) only if the world's judge, where there
    is one, does not read the best prompt's pictures as less faithful (those are ``flagged``)."""
    from ..stats import sem

    blocks = [h for h in (held_out(r) for r in rows) if h]
    if not blocks:
        return dict.fromkeys(COLUMNS[12:], None) | {"held_out_prompts": 0}
    changes = [sign * (h["initial"]["loss"] - h["best"]["loss"]) for h in blocks]
    flags = [task.flagged(h["initial"].get("faithfulness"), h["best"].get("faithfulness")) for h in blocks]
    faith0 = [h["initial"]["faithfulness"] for h in blocks if "faithfulness" in h["initial"]]
    faith = [h["best"]["faithfulness"] for h in blocks if "faithfulness" in h["best"]]
    return {
        "held_out_prompts": len(blocks),
        "held_out_initial_mean": statistics.fmean(h["initial"]["loss"] for h in blocks),
        "held_out_best_mean": statistics.fmean(h["best"]["loss"] for h in blocks),
        "held_out_change_mean": statistics.fmean(changes),
        "held_out_change_sem": sem(changes),
        "held_out_share": sum(c > 1e-9 and not f for c, f in zip(changes, flags)) / len(changes),
        "held_out_flagged": sum(flags),
        "held_out_initial_faithfulness": statistics.fmean(faith0) if faith0 else None,
        "held_out_best_faithfulness": statistics.fmean(faith) if faith else None,
        "held_out_cost_mean": statistics.fmean(h.get("cost", 0.0) for h in blocks),
    }


def pairs(runs) -> list[dict]:
    """Every two runs of the same task, prompt by prompt on the prompts both finished: wins, ties
    and a paired bootstrap interval of the held-out best loss (the search's when either run has none)."""
    from itertools import combinations

    from ..stats import paired

    out = []
    for (na, ca, ra), (nb, cb, rb) in combinations(runs, 2):
        task = ca.get("task", "enhance")
        if cb.get("task", "enhance") != task:
            continue
        a = {r["prompt"]: (r, held_out(r)) for r in ra}  # each stored result parsed once
        b = {r["prompt"]: (r, held_out(r)) for r in rb}
        shared = [p for p in a if p in b]
        if not shared:
            continue
        use_held = all(a[p][1] and b[p][1] for p in shared)

        def loss(pair):
            row, held = pair
            return held["best"]["loss"] if use_held else row["best_loss"]

        result = paired(na, [loss(a[p]) for p in shared], nb, [loss(b[p]) for p in shared], maximize=task_sign(ca) < 0)
        out.append({"measure": "held_out_best_loss" if use_held else "best_loss", **result.to_dict()})
    return out


def pairs_markdown(table: list[dict]) -> str:
    if not table:
        return ""
    lines = [
        "Paired, prompt by prompt (positive difference: A better; ties apart; 95 % bootstrap interval):",
        "",
        "| A | B | measure | prompts | A wins | B wins | ties | mean difference [95 % CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in table:
        lines.append(
            f"| {p['a']} | {p['b']} | {p['measure']} | {p['n']} | {p['a_wins']} | {p['b_wins']} | {p['ties']} "
            f"| {p['mean_difference']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}]{' *' if p['significant'] else ''} |"
        )
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    for row in table:
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def to_markdown(table: list[dict]) -> str:
    head = (
        "| run | solver | source | task | prompts | initial loss | best loss | change | improved / broken "
        "| held-out change | held-out improved / broken | judged, held-out (initial -> best) | cost / prompt |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in table:
        judged = "-" if r.get("held_out_best_faithfulness") is None else (
            f"{100 * r['held_out_initial_faithfulness']:.1f} % -> {100 * r['held_out_best_faithfulness']:.1f} %")
        lines.append(
            f"| {r['run']} | {r['solver']} | {r['source']} | {r['task']} | {r['prompts']} | "
            f"{r['initial_mean']:.4f} ± {r['initial_std']:.4f} | {r['best_mean']:.4f} ± {r['best_std']:.4f} | "
            f"{r['change_mean']:+.4f} | {100 * r['share']:.0f} % | "
            f"{_fmt(r.get('held_out_change_mean'), '{:+.4f}')} | {_fmt(r.get('held_out_share'), '{:.0%}')} | {judged} | "
            f"{r['cost_mean']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _cost_curve(rows: list[dict], sign: float, points: int = 50):
    """Mean change of the best loss (task direction: ``sign``) against the share of each prompt's budget spent."""
    grid = [i / (points - 1) for i in range(points)]
    curves = []
    for r in rows:
        data = json.loads(r["result_json"])
        budget, initial = data["budget"], data["initial"]["loss"]
        steps = [(h["cost"] / budget, h["best_loss"]) for h in data["history"] if h.get("best_loss") is not None]
        curve, j, best = [], 0, initial
        for x in grid:
            while j < len(steps) and steps[j][0] <= x + 1e-12:
                best = steps[j][1]
                j += 1
            curve.append(sign * (initial - best))
        curves.append(curve)
    return grid, [statistics.fmean(c[i] for c in curves) for i in range(points)]


def _finish(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> None:
    """Label a one-axis figure, save it as a PNG and free it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(runs, folder: Path) -> list[str]:
    """loss_before_after.png and loss_vs_cost.png in ``folder``; returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    lo, hi = float("inf"), float("-inf")
    for name, _config, rows in runs:
        xs, ys = [r["initial_loss"] for r in rows], [r["best_loss"] for r in rows]
        if xs:
            ax.scatter(xs, ys, s=14, label=name)
            lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
    if lo < hi:
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    _finish(plt, fig, ax, folder / "loss_before_after.png", "initial loss", "best loss", "loss before vs after, per prompt")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, config, rows in runs:
        if rows:
            grid, mean = _cost_curve(rows, task_sign(config))
            ax.plot(grid, mean, label=f"{config.get('solver', name)} ({name})")
    _finish(plt, fig, ax, folder / "loss_vs_cost.png", "share of the budget spent (denoiser passes)",
            "mean loss change (task direction)", "loss against cost")
    return ["loss_before_after.png", "loss_vs_cost.png"]


def rescore(folders: list[str | Path], scorer_spec: str) -> list[dict]:
    """Score the stored initial and best images of each folder with another scorer (loaded once);
    each folder gets rescore-<name>.json."""
    from .rescorers import make_rescorer

    name, scorer = make_rescorer(scorer_spec)
    return [_rescore_folder(Path(folder), name, scorer) for folder in folders]


def _rescore_folder(folder: Path, name: str, scorer) -> dict:
    from PIL import Image

    store = ResultStore.open_existing(folder)
    try:
        rows = store.rows("done")
    finally:
        store.close()
    scores = []
    for r in rows:
        data = json.loads(r["result_json"])
        per = {}
        for which in ("initial_images", "best_images"):
            images = [Image.open(folder / r["image_dir"] / n).convert("RGB") for n in data.get(which, [])]
            per[which.split("_")[0]] = statistics.fmean(scorer(images, r["prompt"])) if images else None
        scores.append({"prompt": r["prompt"], **per})
    valid = [s for s in scores if s["initial"] is not None]
    summary = {
        "scorer": name,
        "prompts": len(valid),
        "initial_mean": statistics.fmean(s["initial"] for s in valid) if valid else None,
        "best_mean": statistics.fmean(s["best"] for s in valid) if valid else None,
        "per_prompt": scores,
    }
    (folder / f"rescore-{name}.json").write_text(json.dumps(summary, indent=2))
    return summary
