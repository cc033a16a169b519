"""``dpo-diff run``, ``evaluate`` and ``report``: many prompts into one resumable results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import RunConfig
from .common import fail, handled, out, plural, progress_display, warn
from .options import run_options
from .tables import evaluate_tables, pairs_table


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("evaluate")(evaluate_command)
    app.command("report")(report_command)


@run_options()
def run_command(
    prompts: Annotated[Optional[str], typer.Argument(help="Prompt file: .txt (one per line), .jsonl, .csv/.tsv.")] = None,
    task: Annotated[str, typer.Option(help="enhance | attack")] = "enhance",
    out_dir: Annotated[str, typer.Option("--out", help="Results folder (results.sqlite + images); re-run to resume.")] = "runs/batch",
    dataset: Annotated[Optional[str], typer.Option(help="A Hugging Face dataset name or a folder saved with `datasets`.")] = None,
    split: Annotated[str, typer.Option(help="Dataset split.")] = "train",
    column: Annotated[Optional[str], typer.Option(help="Column holding the prompts (JSONL/CSV/dataset).")] = None,
    filter: Annotated[Optional[str], typer.Option("--filter", help="Keep hard prompts by initial loss: 'loss>0.85' or 'loss<0.85'.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many prompts (after deduplication).")] = None,
    ray: Annotated[
        Optional[str],
        typer.Option("--ray", help="Fan prompts out to Ray actors: 'auto' (this node's cluster, else a local one) or a cluster address."),
    ] = None,
    actors: Annotated[
        Optional[int], typer.Option(help="Ray actors (default: one per GPU; without GPUs one per 4 CPUs).")
    ] = None,
    config: RunConfig = RunConfig(),
) -> None:
    """Optimize every prompt of a file or dataset into one resumable results folder.

    Re-running the same command resumes: finished prompts are kept and skipped, and any changed
    option is refused in one line. One run per folder: a second run on a folder in use is refused
    (README: "Faults").
    """
    with handled():
        config.check(task)
    if actors is not None and actors < 1:
        fail(f"--actors must be at least 1, not {actors}")
    from ..batch import load_prompts, run_batch

    progress = progress_display(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("prompts"),
        TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
    )
    bar = progress.add_task(f"{task}: loading", total=None)

    def on_progress(status) -> None:
        best = f"{status.best_change:+.4f}" if status.best_change is not None else "-"
        progress.update(bar, completed=status.done, total=status.total, description=f"{task}: best change {best}")

    def on_event(message: str) -> None:
        progress.console.print(escape(message), style="yellow", soft_wrap=True)

    with handled(f"interrupted: finished prompts are kept in {out_dir}; run the same command to resume"):
        records = load_prompts(prompts, dataset, split, column, limit)
        for note in records.notes():
            warn(note)
        with progress:
            counts = run_batch(records, out_dir, task, filter=filter, progress=on_progress, ray=ray, actors=actors,
                               on_event=on_event, config=config)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    skipped = f" ({'; '.join(records.notes())})" if records.notes() else ""
    out.print(escape(f"{plural(len(records), 'prompt')}{skipped}: {parts}; results in {out_dir}"), soft_wrap=True)


def evaluate_command(
    folders: Annotated[list[str], typer.Argument(help="Results folders of `dpo-diff run` (several: compare solvers).")],
    rescore: Annotated[Optional[list[str]], typer.Option(help="Also score the images with clip[:ID], pickscore[:ID] or imagereward.")] = None,
) -> None:
    """Table 1 of the paper per source and task (text, CSV, Markdown) and plots, in the first folder."""
    from ..batch.evaluate import (
        load_runs, pairs, pairs_markdown, plot, rescore as rescore_images, summarize, to_csv, to_markdown,
    )

    def write_error(error: OSError) -> str:
        return f"cannot write the evaluation into '{folders[0]}' ({error.strerror or error}): make it writable"

    with handled(write_error=write_error):
        runs = load_runs(folders)
        table = summarize(runs)
        paired = pairs(runs)
        target = Path(folders[0])
        (target / "evaluation.csv").write_text(to_csv(table))
        (target / "evaluation.md").write_text(to_markdown(table) + ("\n" + pairs_markdown(paired) if paired else ""))
        plots = plot(runs, target)
        extra = [summary for spec in (rescore or []) for summary in rescore_images(folders, spec)]
    for view in evaluate_tables(table):
        out.print(view)
    if paired:
        out.print(pairs_table(paired))
    for summary in extra:
        out.print(f"rescored with {summary['scorer']}: initial {summary['initial_mean']:.4f}, best {summary['best_mean']:.4f} ({summary['prompts']} prompts)")
    written = [target / "evaluation.csv", target / "evaluation.md", *(target / p for p in plots)]
    out.print("wrote " + ", ".join(map(str, written)), soft_wrap=True)


def report_command(folder: Annotated[str, typer.Argument(help="Results folder of `dpo-diff run`.")]) -> None:
    """A static HTML page of a batch run: summary, plots, images side by side, changed words highlighted."""
    from ..batch.report import write_report

    def write_error(error: OSError) -> str:
        return f"cannot write the report into '{folder}' ({error.strerror or error}): make it writable"

    with handled(write_error=write_error):
        path = write_report(folder)
    out.print(f"wrote {path}", soft_wrap=True)
