"""``dpo-diff enhance``, ``attack`` and ``space``: one prompt at a time."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..checks import check_prompt
from ..config import RunConfig
from ..objectives import OBJECTIVES
from ..task import get_task
from .common import err, fail, handled, interrupt_code, out, plural, progress_display, state
from .options import run_options


def register(app: typer.Typer) -> None:
    app.command()(enhance)
    app.command()(attack)
    app.command("space")(space_command)


Out = Annotated[str | None, typer.Option(help="Folder for result.json and the images.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the result already in --out (its files only).")]


@run_options("enhance")
def enhance(
    prompt: Annotated[str, typer.Argument(help="What you want an image of.")],
    out: Out = None,
    overwrite: Overwrite = False,
    config: RunConfig = RunConfig(),
) -> None:
    """Find a negative prompt (or rewrite) that makes the model draw PROMPT better."""
    _run("enhance", prompt, out, overwrite, config)


@run_options("attack")
def attack(
    prompt: Annotated[str, typer.Argument(help="The prompt to red-team.")],
    out: Out = None,
    overwrite: Overwrite = False,
    config: RunConfig = RunConfig(),
) -> None:
    """Find a meaning-preserving rewrite of PROMPT (synonyms) that makes the model fail."""
    _run("attack", prompt, out, overwrite, config)


def _run(task: str, prompt: str, out_dir: str | None, overwrite: bool, config: RunConfig) -> None:
    with handled():  # before torch is imported: a bad option, prompt or --out costs well under a second
        config.check(task)
        check_prompt(prompt, config.allow_non_ascii)
        if out_dir is not None:
            from ..outputs import prepare_out_dir

            prepare_out_dir(out_dir, overwrite)
    from .. import api

    progress = progress_display(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("denoiser passes"),
        TextColumn("elapsed"), TimeElapsedColumn(),
    )
    bar = progress.add_task(f"{task}: loading", total=None)

    def on_progress(problem) -> None:
        best = f"{problem.best_loss:.4f}" if problem.best_loss is not None else "-"
        progress.update(
            bar, completed=problem.meter.used, total=problem.meter.budget, description=f"{task}: best loss {best}"
        )

    def write_error(error: OSError) -> str:  # result.json or an image could not be written
        return (f"cannot write '{error.filename or out_dir}' ({error.strerror or error}): "
                "free space or use another --out")

    with handled("interrupted before the search started; nothing to save", write_error), progress:
        result = api.optimize(task, prompt, config, out=out_dir, overwrite=True, progress=on_progress)
    show_result(result, out_dir)
    if result.interrupted:
        state.reported = True  # show_result said so, and what was kept: no second line from main()
        raise typer.Exit(interrupt_code())


def show_result(result, out_dir: str | None) -> None:
    """The initial and best candidate, on the search and the held-out seeds, and what it cost."""
    held = result.held_out
    judged = result.judged
    attack = result.task == "attack"
    better = get_task(result.task).goal(result.lower_is_better)
    spec = OBJECTIVES.get(result.objective)
    what = spec.description if spec is not None else f"{result.objective} of the pictures"
    caption = f"loss: {what}, {better} is the goal"
    if judged is not None:
        caption += "; judged: the world's pixel judge, share of the prompt's attributes drawn (higher: more faithful)"
    table = Table(show_header=True, header_style="bold", caption=caption)
    columns = ["", "prompt", "similarity" if attack else "negative prompt", "loss"]
    if held is not None:
        columns.append("loss held-out")
    if judged is not None:
        columns.append("judged" + (" held-out" if held is not None and held.initial.faithfulness is not None else ""))
    for column in columns:
        table.add_column(column, justify="right" if column.startswith(("loss", "judged", "similarity")) else "left",
                         overflow="fold")
    for name, cand in (("initial", result.initial), ("best", result.best)):
        if attack:
            similarity = (result.meaning or {}).get("similarity") if name == "best" else None
            third = "1.00" if name == "initial" or cand.prompt == result.prompt else (
                "-" if similarity is None else f"{similarity:.2f}")
        else:
            third = escape(cand.negative_prompt or "-")
        row = [name, escape(cand.prompt), third, f"{cand.loss:.4f}" if cand.loss is not None else "-"]
        if held is not None:
            row.append(f"{getattr(held, name).loss:.4f}")
        if judged is not None:
            row.append(f"{100 * judged[0 if name == 'initial' else 1]:.0f} %")
        table.add_row(*row)
    out.print(table)
    spent = f"cost {result.cost:.0f}/{result.budget:.0f} denoiser-pass equivalents"
    if held is not None:
        spent += f" (+{held.cost:.0f} for {plural(len(held.seeds), 'held-out seed')})"
    out.print(
        escape(f"{result.task} with {result.solver} on {result.model}: {spent}, "
               f"{result.seconds:.1f} s, search seeds {result.seeds}"
               + (f", held-out seeds {held.seeds}" if held is not None else ""))
    )
    if held is not None:
        change = result.held_out_improvement
        verdict = "better than the initial prompt" if change > 0 else "NOT better than the initial prompt"
        out.print(escape(f"held-out seeds: the best prompt is {verdict} (loss change {change:+.4f} in the task's "
                         f"direction; on the search seeds {result.improvement:+.4f})"))
    if result.flagged:
        err.print(escape(f"flagged: the judge reads the best prompt's pictures as less faithful "
                         f"({100 * judged[0]:.0f} % -> {100 * judged[1]:.0f} %): not an improvement, "
                         "whatever the loss says"), style="yellow", soft_wrap=True)
    if result.message:
        err.print(f"[yellow]{escape(result.message)}[/yellow]")
    if out_dir is not None and result.initial.loss is not None:
        out.print(f"wrote {os.path.join(out_dir, 'result.json')} and {os.path.join(out_dir, 'seed-*.png')} "
                  "(initial | best, enlarged and labeled)", soft_wrap=True)


@run_options(only=("model", "source", "vocabulary", "min_similarity", "allow_non_ascii", "llm_base_url", "llm_model"))
def space_command(
    prompt: Annotated[str, typer.Argument(help="The prompt.")],
    kind: Annotated[str, typer.Option(help="synonym | antonym | nplib | antonym+nplib")] = "synonym",
    config: RunConfig = RunConfig(),
) -> None:
    """Show the search space of PROMPT: the slots and their candidates with their in-context scores.

    Synonyms are those an attack searches (its meaning check, --min-similarity); with --model,
    token counts are that model's and its vocabulary applies (the bundled world's: --model world)."""
    from ..api import show_space

    with handled():
        config.check("attack" if kind == "synonym" else "enhance")
        space = show_space(prompt, kind, model=config.model, source=config.source, llm=config.llm(),
                           allow_non_ascii=config.allow_non_ascii, vocabulary=config.vocabulary,
                           min_similarity=config.min_similarity)
    if space.is_empty:
        err.print(f"[yellow]no word of the prompt has substitutes in the '{kind}' space[/yellow]")
        return
    table = Table(title=escape(f"{space.kind} space of {prompt!r}: {space.size} choices"), header_style="bold")
    for column in ("slot", "target", "candidates (first = default; in-context score; tokens when more than one)"):
        table.add_column(column)
    for slot in space.slots:
        scores = slot.scores or (None,) * len(slot.candidates)
        tokens = slot.tokens or (1,) * len(slot.candidates)
        shown = [(c if c else '""') + _notes(sc, n) for c, sc, n in zip(slot.candidates, scores, tokens)]
        table.add_row(escape(slot.label), slot.target, escape(", ".join(shown)))
    out.print(table)
    if space.dropped:
        out.print(escape(f"{plural(len(space.dropped), 'candidate')} left out, each with its reason in the space's "
                         f"'dropped' (result.json), e.g. {space.dropped[0]}"))


def _notes(score: float | None, tokens: int) -> str:
    """" (-1.23, 2 tokens)" beside a candidate: its in-context score, and its token count when above one."""
    notes = ([f"{score:.2f}"] if score is not None else []) + ([f"{tokens} tokens"] if tokens > 1 else [])
    return f" ({', '.join(notes)})" if notes else ""


__all__ = ["attack", "enhance", "fail", "register", "show_result", "space_command"]
