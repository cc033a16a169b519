"""``dpo-diff compare``: each solver (and space) at each budget on the same prompts and seeds."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import RunConfig
from .common import fail, handled, ints, out, plural, progress_display, warn
from ..task import get_task
from .options import run_options
from .tables import compare_table, pairs_table


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)


@run_options(skip=("solver", "budget", "space"), defaults={"seeds": "2"})
def compare_command(
    prompts: Annotated[str, typer.Argument(help="Prompt file (.txt, .jsonl, .csv).")],
    solvers: Annotated[str, typer.Option(help="Comma-separated solvers.")] = "random,epo,gpo,hybrid",
    budgets: Annotated[str, typer.Option(help="Comma-separated budgets in denoiser passes.")] = "800,1600,3200",
    spaces: Annotated[Optional[str], typer.Option(help="Comma-separated spaces (default: the task's).")] = None,
    task: Annotated[str, typer.Option(help="enhance | attack")] = "enhance",
    out_dir: Annotated[str, typer.Option("--out", help="Folder for compare.json, compare.md, compare.png.")] = "runs/compare",
    limit: Annotated[Optional[int], typer.Option(help="At most this many prompts.")] = None,
    search_seeds: Annotated[int, typer.Option(help="Repeat each search with this many search seeds (--seed, --seed + 1, ...).")] = 1,
    config: RunConfig = RunConfig(),
) -> None:
    """Each solver (and space) at each budget on the same prompts and seeds: table + plot (+ judge on the world)."""
    budget_list = ints("--budgets", budgets, "denoiser passes")
    if search_seeds < 1:
        fail(f"--search-seeds must be at least 1, not {search_seeds}")
    space_list = [x.strip() for x in spaces.split(",")] if spaces else [None]
    with handled():
        for space in space_list:
            config.replace(space=space).check(task)
    from .. import compare as comparison
    from ..batch import load_prompts
    from ..engine import load_for

    progress = progress_display(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"),
                                TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    bar = progress.add_task("compare: loading", total=None)

    def write_error(error: OSError) -> str:
        return f"cannot write '{error.filename or out_dir}' ({error.strerror or error}): free space or use another --out"

    with handled("interrupted: nothing written", write_error):
        records = load_prompts(prompts, limit=limit)
        for note in [*records.notes(), *(f"{r.refusal}; skipped" for r in records if r.refusal)]:
            warn(note)
        records = [r for r in records if r.refusal is None]
        if not records:
            fail(f"no prompt of {prompts} can be compared")
        solver_list = [x.strip() for x in solvers.split(",") if x.strip()]
        runs = len(records) * len(solver_list) * len(budget_list) * len(space_list) * search_seeds
        passes = len(records) * len(solver_list) * len(space_list) * search_seeds * sum(budget_list)
        out.print(escape(f"compare: {plural(runs, 'run')} ({plural(len(records), 'prompt')} x "
                         f"{plural(len(solver_list), 'solver')} x {plural(len(budget_list), 'budget')}"
                         + (f" x {len(space_list)} spaces" if len(space_list) > 1 else "")
                         + (f" x {search_seeds} search seeds" if search_seeds > 1 else "")
                         + f"), up to {passes:,} denoiser passes plus held-out seeds; the time left shows after "
                         "the first run"), soft_wrap=True)
        engine = load_for(config)
        with progress:
            report = comparison.compare(
                [r.text for r in records], solver_list, budget_list,
                space_list, task, engine, config=config, search_seeds=search_seeds,
                progress=lambda d, t, what: progress.update(bar, completed=d, total=t, description=f"compare {what}"),
            )
        paths = comparison.write(report, out_dir)
    better = get_task(task).goal(report.get("lower_is_better", True))
    out.print(compare_table(report, better))
    if report.get("pairs"):
        out.print(pairs_table(report["pairs"], label_budget=True))
    out.print("wrote " + ", ".join(map(str, paths)) + " (compare.md: every column)", soft_wrap=True)
