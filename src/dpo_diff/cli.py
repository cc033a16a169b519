"""``dpo-diff``: the command line, a thin shell over :mod:`dpo_diff.api`."""

from __future__ import annotations

import logging
import os
import signal
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import DpoDiffError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Discrete prompt optimization for text-to-image diffusion models (DPO-Diff).",
)
err = Console(stderr=True, highlight=False)
out = console = Console(highlight=False)

# Options shared by `enhance` and `attack` (declared once, used in both signatures).
Model = Annotated[
    Optional[str],
    typer.Option(
        help="world (bundled, the default when installed), a preset (tiny, tiny-sdxl, tiny-sdxl-turbo, sd15-random, "
        "sdxl-random), a Hugging Face Hub id (SD 1.x/2.x, SDXL, Turbo) or a local pipeline folder."
    ),
]
Space = Annotated[Optional[str], typer.Option(help="synonym | antonym | nplib | antonym+nplib (default: by task).")]
SolverOpt = Annotated[str, typer.Option("--solver", help="random | epo | gpo | hybrid")]
Budget = Annotated[Optional[int], typer.Option(help="UNet forward passes to spend (default: 40 evaluations' worth).")]
Seeds = Annotated[str, typer.Option(help="Image seeds: a count (2 means 0,1) or a list (3,7).")]
EvalSeeds = Annotated[
    str,
    typer.Option(help="Held-out seeds the best prompt is re-rendered on after the search: a count of new seeds "
                      "(from 1000 on) or a list; 0 turns it off."),
]
GpoStyle = Annotated[
    str,
    typer.Option(help="GPO details: 'authors' (per-element clipping, original word's logit 1, random ties) or "
                      "'previous' (global-norm clipping, zero logits, first candidate wins ties)."),
]
Steps = Annotated[Optional[int], typer.Option(help="Sampling steps (default: 50; 20 for presets).")]
Guidance = Annotated[
    Optional[float],
    typer.Option(help="Classifier-free guidance scale (default: 7.5; the model's own for few-step presets)."),
]
Out = Annotated[Optional[str], typer.Option(help="Folder for result.json and the images.")]
Seed = Annotated[int, typer.Option(help="Seed of the search itself (sampling, mutations).")]
Source = Annotated[str, typer.Option(help="Where substitutes come from: wordnet | llm | PATH.json")]
EstimatorOpt = Annotated[str, typer.Option("--estimator", help="shortcut | full | full-checkpoint")]
K = Annotated[int, typer.Option("--k", help="Grad UNet steps of the shortcut estimator.")]
Schedule = Annotated[str, typer.Option(help="t_i schedule in 50-step units: step-A-B | rand-A-B | fix-N.")]
Iterations = Annotated[int, typer.Option(help="Gradient iterations of gpo / hybrid.")]
MinSimilarity = Annotated[float, typer.Option(help="Least sentence-embedding cosine to the prompt (0: off).")]
Scorer = Annotated[Optional[str], typer.Option(help="CLIP scorer id or folder (default: preset's, else openai/clip-vit-base-patch32).")]
Device = Annotated[Optional[str], typer.Option(help="cuda | mps | cpu (default: the best available).")]
NonAscii = Annotated[bool, typer.Option(help="Accept non-ASCII text (such words are kept fixed).")]
LlmUrl = Annotated[Optional[str], typer.Option(envvar="DPO_DIFF_LLM_BASE_URL", help="OpenAI-compatible endpoint for --source llm.")]
LlmModel = Annotated[
    Optional[str],
    typer.Option(
        envvar="DPO_DIFF_LLM_MODEL",
        help="Model for --source llm (key: $DPO_DIFF_LLM_API_KEY; $OPENAI_API_KEY only for api.openai.com).",
    ),
]

# How the process was asked to stop (set by the handlers main() installs), and whether the
# user has been told: an interrupt nobody reported gets its one line in main().
_stop_signal: int | None = None
_reported = False


def _quiet_libraries() -> None:
    """Keep library chatter (torchvision notices, weight-loading bars) off the user's screen."""
    for name in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY"):
        os.environ.setdefault(name, "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ["DPO_DIFF_QUIET"] = "1"  # no library loading bars under our own progress display
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"nltk\..*")
    warnings.filterwarnings("ignore", category=FutureWarning)

    def show(message, category, filename, lineno, file=None, line=None):
        err.print(f"[yellow]warning:[/yellow] {escape(str(message))}")

    warnings.showwarning = show


def _fail(message: str, code: int = 2) -> None:
    """One ``error:`` line on stderr, then exit with ``code``.

    An interrupt (code 130) that came as SIGTERM says so and exits 143, as SIGTERM should.
    """
    global _reported
    if _stop_signal is not None and code not in (130, 143):
        # a library may turn the interrupt into an error of its own (a failed lazy import): still the interrupt
        message, code = f"interrupted (while: {message})", 130
    if code == 130 and _stop_signal == signal.SIGTERM:
        message, code = "stopped by SIGTERM" + message.removeprefix("interrupted"), 143
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    _reported = True
    raise typer.Exit(code)


def _interrupt_code() -> int:
    return 143 if _stop_signal == signal.SIGTERM else 130


def _progress(*columns) -> Progress:
    """A transient progress display on stderr, off when stderr is not a terminal (no stray blank line)."""
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


def _llm(base_url: str | None, model: str | None):
    from .spaces import LLMConfig

    config = LLMConfig()
    if base_url:
        config.base_url = base_url
    if model:
        config.model = model
    return config


def _run(task: str, prompt: str, llm_base_url: str | None, llm_model: str | None, **options) -> None:
    _quiet_libraries()
    from . import api

    progress = _progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("UNet passes"),
        TimeElapsedColumn(),
    )
    bar = progress.add_task(f"{task}: loading", total=None)

    def on_progress(problem) -> None:
        best = f"{problem.best_loss:.4f}" if problem.best_loss is not None else "-"
        progress.update(
            bar, completed=problem.meter.used, total=problem.meter.budget, description=f"{task}: best loss {best}"
        )

    try:
        with progress:
            result = api.optimize(task, prompt, llm=_llm(llm_base_url, llm_model), progress=on_progress, **options)
    except DpoDiffError as error:
        _fail(str(error), error.exit_code)
    except OSError as error:  # result.json or an image could not be written (full disk, file-size limit)
        _fail(f"cannot write '{error.filename or options.get('out')}' ({error.strerror or error}): "
              "free space or use another --out")
    except KeyboardInterrupt:
        _fail("interrupted before the search started; nothing to save", 130)
    _report(result, options.get("out"))
    if result.interrupted:
        raise typer.Exit(_interrupt_code())


def _report(result, out_dir: str | None) -> None:
    held = result.held_out
    judged = result.initial_faithfulness is not None
    better = "lower" if result.task == "enhance" else "higher"
    table = Table(show_header=True, header_style="bold", caption=f"loss: CLIP distance to the prompt, {better} is the goal")
    columns = ["", "prompt", "negative prompt", "loss (search seeds)"]
    if held is not None:
        columns.append("loss (held-out seeds)")
    if judged:
        columns.append("judged faithfulness" + (" (held-out)" if held is not None else ""))
    for column in columns:
        table.add_column(column, justify="right" if column.startswith(("loss", "judged")) else "left")
    for name, cand in (("initial", result.initial), ("best", result.best)):
        row = [name, escape(cand.prompt), escape(cand.negative_prompt or "-"),
               f"{cand.loss:.4f}" if cand.loss is not None else "-"]
        held_cand = getattr(held, name) if held is not None else None
        if held is not None:
            row.append(f"{held_cand.loss:.4f}")
        if judged:
            faith = held_cand.faithfulness if held_cand is not None else getattr(result, f"{name}_faithfulness")
            row.append("-" if faith is None else f"{100 * faith:.0f} %")
        table.add_row(*row)
    out.print(table)
    spent = f"cost {result.cost:.0f}/{result.budget:.0f} UNet-pass equivalents"
    if held is not None:
        spent += f" (+{held.cost:.0f} for {len(held.seeds)} held-out seed{'s' if len(held.seeds) != 1 else ''})"
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
    if result.message:
        err.print(f"[yellow]{escape(result.message)}[/yellow]")
    if out_dir is not None and result.initial.loss is not None:
        out.print(f"wrote {os.path.join(out_dir, 'result.json')}", soft_wrap=True)


@app.command()
def enhance(
    prompt: Annotated[str, typer.Argument(help="What you want an image of.")],
    model: Model = None,
    space: Space = None,
    solver: SolverOpt = "hybrid",
    budget: Budget = None,
    seeds: Seeds = "1",
    eval_seeds: EvalSeeds = "4",
    steps: Steps = None,
    guidance: Guidance = None,
    out: Out = None,
    seed: Seed = 0,
    source: Source = "wordnet",
    estimator: EstimatorOpt = "shortcut",
    k: K = 1,
    schedule: Schedule = "step-15-2",
    iterations: Iterations = 20,
    gpo_style: GpoStyle = "authors",
    scorer: Scorer = None,
    device: Device = None,
    allow_non_ascii: NonAscii = False,
    llm_base_url: LlmUrl = None,
    llm_model: LlmModel = None,
) -> None:
    """Find a negative prompt (or rewrite) that makes the model draw PROMPT better."""
    _run("enhance", **locals())


@app.command()
def attack(
    prompt: Annotated[str, typer.Argument(help="The prompt to red-team.")],
    model: Model = None,
    space: Space = None,
    solver: SolverOpt = "hybrid",
    budget: Budget = None,
    seeds: Seeds = "1",
    eval_seeds: EvalSeeds = "4",
    steps: Steps = None,
    guidance: Guidance = None,
    out: Out = None,
    seed: Seed = 0,
    source: Source = "wordnet",
    estimator: EstimatorOpt = "shortcut",
    k: K = 1,
    schedule: Schedule = "step-15-2",
    iterations: Iterations = 20,
    gpo_style: GpoStyle = "authors",
    min_similarity: MinSimilarity = 0.8,
    scorer: Scorer = None,
    device: Device = None,
    allow_non_ascii: NonAscii = False,
    llm_base_url: LlmUrl = None,
    llm_model: LlmModel = None,
) -> None:
    """Find a meaning-preserving rewrite of PROMPT (synonyms) that makes the model fail."""
    _run("attack", **locals())


@app.command("space")
def space_command(
    prompt: Annotated[str, typer.Argument(help="The prompt.")],
    kind: Annotated[str, typer.Option(help="synonym | antonym | nplib | antonym+nplib")] = "synonym",
    source: Source = "wordnet",
    allow_non_ascii: NonAscii = False,
    llm_base_url: LlmUrl = None,
    llm_model: LlmModel = None,
) -> None:
    """Show the search space of PROMPT: the slots and their candidates (single CLIP tokens)."""
    _quiet_libraries()
    from .api import show_space

    try:
        space = show_space(prompt, kind, source=source, llm=_llm(llm_base_url, llm_model), allow_non_ascii=allow_non_ascii)
    except DpoDiffError as error:
        _fail(str(error), error.exit_code)
    if space.is_empty:
        err.print(f"[yellow]no word of the prompt has substitutes in the '{kind}' space[/yellow]")
        return
    table = Table(title=escape(f"{space.kind} space of {prompt!r}: {space.size} choices"), header_style="bold")
    for column in ("slot", "target", "candidates (first = default; in-context score)"):
        table.add_column(column)
    for slot in space.slots:
        scores = slot.scores or (None,) * len(slot.candidates)
        shown = [(c if c else '""') + (f" ({sc:.2f})" if sc is not None else "") for c, sc in zip(slot.candidates, scores)]
        table.add_row(escape(slot.label), slot.target, escape(", ".join(shown)))
    out.print(table)
    if space.dropped:
        out.print(escape(f"{len(space.dropped)} candidates left out, each with its reason in the space's "
                         f"'dropped' (result.json), e.g. {space.dropped[0]}"))


@app.command("run")
def run_command(
    prompts: Annotated[Optional[str], typer.Argument(help="Prompt file: .txt (one per line), .jsonl, .csv/.tsv.")] = None,
    task: Annotated[str, typer.Option(help="enhance | attack")] = "enhance",
    out_dir: Annotated[str, typer.Option("--out", help="Results folder (results.sqlite + images); re-run to resume.")] = "runs/batch",
    dataset: Annotated[Optional[str], typer.Option(help="A Hugging Face dataset name or a folder saved with `datasets`.")] = None,
    split: Annotated[str, typer.Option(help="Dataset split.")] = "train",
    column: Annotated[Optional[str], typer.Option(help="Column holding the prompts (JSONL/CSV/dataset).")] = None,
    filter: Annotated[Optional[str], typer.Option("--filter", help="Keep hard prompts by initial loss: 'loss>0.85' or 'loss<0.85'.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many prompts (after deduplication).")] = None,
    resume: Annotated[bool, typer.Option(help="Skip finished prompts (always on: re-running resumes).")] = True,
    model: Model = None,
    space: Space = None,
    solver: SolverOpt = "hybrid",
    budget: Budget = None,
    seeds: Seeds = "1",
    eval_seeds: EvalSeeds = "4",
    steps: Steps = None,
    guidance: Guidance = None,
    seed: Seed = 0,
    source: Source = "wordnet",
    estimator: EstimatorOpt = "shortcut",
    k: K = 1,
    schedule: Schedule = "step-15-2",
    iterations: Iterations = 20,
    min_similarity: MinSimilarity = 0.8,
    scorer: Scorer = None,
    device: Device = None,
    allow_non_ascii: NonAscii = False,
    ray: Annotated[
        Optional[str],
        typer.Option("--ray", help="Fan prompts out to Ray actors: 'auto' (this node's cluster, else a local one) or a cluster address."),
    ] = None,
    actors: Annotated[
        Optional[int], typer.Option(help="Ray actors (default: one per GPU; without GPUs one per 4 CPUs).")
    ] = None,
    llm_base_url: LlmUrl = None,
    llm_model: LlmModel = None,
) -> None:
    """Optimize every prompt of a file or dataset into one resumable results folder.

    One run per folder: a second run on a folder in use is refused in one line (README: "Faults").
    """
    _quiet_libraries()
    from rich.progress import TimeRemainingColumn

    from .batch import load_prompts, run_batch

    options = dict(
        space=space, solver=solver, budget=budget, seeds=seeds, eval_seeds=eval_seeds, steps=steps,
        guidance=guidance, seed=seed,
        source=source, estimator=estimator, k=k, schedule=schedule, iterations=iterations, scorer=scorer,
        allow_non_ascii=allow_non_ascii, llm=_llm(llm_base_url, llm_model),
    )
    if task == "attack":
        options["min_similarity"] = min_similarity
    progress = _progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("prompts"),
        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
    )
    bar = progress.add_task(f"{task}: loading", total=None)

    def on_progress(status) -> None:
        best = f"{status.best_change:+.4f}" if status.best_change is not None else "-"
        progress.update(bar, completed=status.done, total=status.total, description=f"{task}: best change {best}")

    def on_event(message: str) -> None:
        progress.console.print(escape(message), style="yellow", soft_wrap=True)

    if actors is not None and actors < 1:
        _fail(f"--actors must be at least 1, not {actors}")
    try:
        records = load_prompts(prompts, dataset, split, column, limit)
        if records.empty_note():
            err.print(f"[yellow]warning:[/yellow] {escape(records.empty_note())}", soft_wrap=True)
        with progress:
            counts = run_batch(
                records, out_dir, task, model=model, filter=filter, progress=on_progress, ray=ray, actors=actors,
                on_event=on_event, device=device, **options,
            )
    except DpoDiffError as error:
        _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        _fail(f"interrupted: finished prompts are kept in {out_dir}; run the same command to resume", 130)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    skipped = f" ({records.empty_note()})" if records.empty_note() else ""
    console.print(escape(f"{len(records)} prompts{skipped}: {parts}; results in {out_dir}"), soft_wrap=True)


@app.command("evaluate")
def evaluate_command(
    folders: Annotated[list[str], typer.Argument(help="Results folders of `dpo-diff run` (several: compare solvers).")],
    rescore: Annotated[Optional[list[str]], typer.Option(help="Also score the images with clip[:ID], pickscore or imagereward.")] = None,
) -> None:
    """Table 1 of the paper per source and task (text, CSV, Markdown) and plots, in the first folder."""
    _quiet_libraries()
    from pathlib import Path

    from .batch.evaluate import (
        load_runs, pairs, pairs_markdown, plot, rescore as rescore_images, summarize, to_csv, to_markdown,
    )

    try:
        runs = load_runs(folders)
        table = summarize(runs)
        paired = pairs(runs)
        target = Path(folders[0])
        (target / "evaluation.csv").write_text(to_csv(table))
        (target / "evaluation.md").write_text(to_markdown(table) + ("\n" + pairs_markdown(paired) if paired else ""))
        plots = plot(runs, target)
        extra = [summary for spec in (rescore or []) for summary in rescore_images(folders, spec)]
    except DpoDiffError as error:
        _fail(str(error), error.exit_code)
    except OSError as error:
        _fail(f"cannot write the evaluation into '{folders[0]}' ({error.strerror or error}): make it writable")
    view = Table(header_style="bold")
    for column in ("run", "solver", "source", "task", "n", "initial loss", "best loss", "change", "improved/broken", "cost"):
        view.add_column(column)
    for r in table:
        view.add_row(
            r["run"], str(r["solver"]), r["source"], r["task"], str(r["prompts"]),
            f"{r['initial_mean']:.4f} ± {r['initial_std']:.4f}", f"{r['best_mean']:.4f} ± {r['best_std']:.4f}",
            f"{r['change_mean']:+.4f}", f"{100 * r['share']:.0f} %", f"{r['cost_mean']:.0f}",
        )
    out.print(view)
    held_rows = [r for r in table if r.get("held_out_change_mean") is not None]
    if held_rows:
        held = Table(header_style="bold", title="the same prompts on held-out seeds (the figures to trust)")
        for column in ("run", "source", "n", "initial -> best loss", "change", "improved/broken", "judged"):
            held.add_column(column)
        for r in held_rows:
            judged = "-" if r.get("held_out_best_faithfulness") is None else (
                f"{100 * r['held_out_initial_faithfulness']:.0f} -> {100 * r['held_out_best_faithfulness']:.0f} %")
            held.add_row(
                r["run"], r["source"], str(r["held_out_prompts"]),
                f"{r['held_out_initial_mean']:.4f} -> {r['held_out_best_mean']:.4f}",
                f"{r['held_out_change_mean']:+.4f} ± {r['held_out_change_sem']:.4f}",
                f"{100 * r['held_out_share']:.0f} %", judged,
            )
        out.print(held)
    if paired:
        out.print(escape(pairs_markdown(paired)))
    for summary in extra:
        out.print(f"rescored with {summary['scorer']}: initial {summary['initial_mean']:.4f}, best {summary['best_mean']:.4f} ({summary['prompts']} prompts)")
    written = [target / "evaluation.csv", target / "evaluation.md", *(target / p for p in plots)]
    out.print("wrote " + ", ".join(map(str, written)), soft_wrap=True)


@app.command("report")
def report_command(folder: Annotated[str, typer.Argument(help="Results folder of `dpo-diff run`.")]) -> None:
    """A static HTML page of a batch run: summary, plots, images side by side, changed words highlighted."""
    _quiet_libraries()
    from .batch.report import write_report

    try:
        path = write_report(folder)
    except DpoDiffError as error:
        _fail(str(error), error.exit_code)
    except OSError as error:
        _fail(f"cannot write the report into '{folder}' ({error.strerror or error}): make it writable")
    out.print(f"wrote {path}", soft_wrap=True)


@app.command("compare")
def compare_command(
    prompts: Annotated[str, typer.Argument(help="Prompt file (.txt, .jsonl, .csv).")],
    solvers: Annotated[str, typer.Option(help="Comma-separated solvers.")] = "random,epo,gpo,hybrid",
    budgets: Annotated[str, typer.Option(help="Comma-separated budgets in UNet passes.")] = "800,1600,3200",
    spaces: Annotated[Optional[str], typer.Option(help="Comma-separated spaces (default: the task's).")] = None,
    task: Annotated[str, typer.Option(help="enhance | attack")] = "enhance",
    out_dir: Annotated[str, typer.Option("--out", help="Folder for compare.json, compare.md, compare.png.")] = "runs/compare",
    limit: Annotated[Optional[int], typer.Option(help="At most this many prompts.")] = None,
    model: Model = None,
    seeds: Seeds = "2",
    eval_seeds: EvalSeeds = "4",
    search_seeds: Annotated[int, typer.Option(help="Repeat each search with this many search seeds (--seed, --seed + 1, ...).")] = 1,
    steps: Steps = None,
    guidance: Guidance = None,
    seed: Seed = 0,
    iterations: Iterations = 20,
    device: Device = None,
    source: Source = "wordnet",
    llm_base_url: LlmUrl = None,
    llm_model: LlmModel = None,
) -> None:
    """Each solver (and space) at each budget on the same prompts and seeds: table + plot (+ judge on the world)."""
    _quiet_libraries()
    from rich.progress import TimeRemainingColumn

    from . import compare as comparison
    from .api import load
    from .batch import load_prompts

    def ints(text: str) -> list[int]:
        try:
            values = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            _fail(f"--budgets '{text}': give whole numbers of UNet passes, comma-separated")
        if not values or min(values) <= 0:
            _fail(f"--budgets '{text}': give positive numbers")
        return values

    progress = _progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                         TextColumn("left"), TimeRemainingColumn())
    bar = progress.add_task("compare: loading", total=None)
    if search_seeds < 1:
        _fail(f"--search-seeds must be at least 1, not {search_seeds}")
    try:
        records = load_prompts(prompts, limit=limit)
        for note in [records.empty_note(), *(f"{r.refusal}; skipped" for r in records if r.refusal)]:
            if note:
                err.print(f"[yellow]warning:[/yellow] {escape(note)}", soft_wrap=True)
        records = [r for r in records if r.refusal is None]
        if not records:
            _fail(f"no prompt of {prompts} can be compared")
        engine = load(model, device=device)
        with progress:
            report = comparison.compare(
                [r.text for r in records], [x.strip() for x in solvers.split(",") if x.strip()], ints(budgets),
                [x.strip() for x in spaces.split(",")] if spaces else [None], task, engine,
                progress=lambda d, t, what: progress.update(bar, completed=d, total=t, description=f"compare {what}"),
                seeds=seeds, steps=steps, guidance=guidance, seed=seed, iterations=iterations,
                eval_seeds=eval_seeds, search_seeds=search_seeds, source=source, llm=_llm(llm_base_url, llm_model),
            )
        paths = comparison.write(report, out_dir)
    except DpoDiffError as error:
        _fail(str(error), error.exit_code)
    except OSError as error:
        _fail(f"cannot write '{error.filename or out_dir}' ({error.strerror or error}): free space or use another --out")
    except KeyboardInterrupt:
        _fail("interrupted: nothing written", 130)
    out.print(escape(comparison.to_markdown(report)))
    out.print("wrote " + ", ".join(map(str, paths)), soft_wrap=True)


world_app = typer.Typer(no_args_is_help=True, help="The bundled text-to-image world: train it, measure it.")
app.add_typer(world_app, name="world")


@world_app.command("train")
def world_train(
    out_dir: Annotated[str, typer.Option("--out", help="Folder for the trained pipeline (+ scorer/).")] = "runs/world",
    quick: Annotated[bool, typer.Option(help="Tiny data and a few steps: checks every stage in seconds.")] = False,
    seed: Seed = 0,
) -> None:
    """Train the world from scratch on this machine's CPU (about 35 minutes on 2 cores)."""
    _quiet_libraries()
    from .world.train import TrainConfig, train_world

    config = TrainConfig.quick() if quick else TrainConfig()
    config.seed = seed
    try:
        path = train_world(out_dir, config, log=lambda m: err.print(escape(m)))
    except KeyboardInterrupt:
        _fail("interrupted: nothing was saved", 130)
    out.print(f"wrote {path}; measure it with: dpo-diff world card {path}", soft_wrap=True)


@world_app.command("card")
def world_card(
    folder: Annotated[str, typer.Argument(help="A trained world folder.")],
    n: Annotated[int, typer.Option(help="Held-out single-object prompts.")] = 200,
) -> None:
    """Measure a trained world (scorer, generator, rare synonyms, negative prompts) and write README.md."""
    _quiet_libraries()
    from . import api
    from .world.quality import measure, write_card

    try:
        engine = api.load(folder, scorer=str(Path(folder) / "scorer"))
        path = write_card(folder, measure(engine, n=n))
    except DpoDiffError as error:
        _fail(str(error), error.exit_code)
    out.print(f"wrote {path}", soft_wrap=True)


def _on_stop_signal(signum: int, _frame) -> None:
    """SIGINT and SIGTERM both stop the command as Ctrl-C does (finished work kept, one line)."""
    global _stop_signal
    _stop_signal = signum
    raise KeyboardInterrupt


def main() -> None:
    """The ``dpo-diff`` entry point: SIGTERM handled like SIGINT, and no interrupt goes unreported."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_stop_signal)
    try:
        app()
    except SystemExit as exit_:
        if exit_.code == 130 and not _reported:  # stopped before a command could say anything
            _fail_interrupted()
        raise
    except BaseException:
        if _stop_signal is None:
            raise
        # stopped while a library was importing or loading: it may have turned the interrupt
        # into an exception of its own; the user asked to stop, so that is what is said
        _fail_interrupted()


def _fail_interrupted() -> None:
    if not _reported:
        word = "stopped by SIGTERM" if _stop_signal == signal.SIGTERM else "interrupted"
        err.print(f"[red]error:[/red] {word} before the command could finish; run it again", soft_wrap=True)
    raise SystemExit(_interrupt_code()) from None


if __name__ == "__main__":
    main()
