"""``dpo-diff world``: train the bundled text-to-image world, measure it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .common import err, fail, handled, out, progress_display

world_app = typer.Typer(no_args_is_help=True, help="The bundled text-to-image world: train it, measure it.")


def register(app: typer.Typer) -> None:
    app.add_typer(world_app, name="world")


@world_app.command("train")
def world_train(
    out_dir: Annotated[str, typer.Option("--out", help="Folder for the trained pipeline (+ scorer/).")] = "runs/world",
    quick: Annotated[bool, typer.Option(help="Tiny data and a few steps: checks every stage in seconds.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the training (data and weights).")] = 0,
) -> None:
    """Train the world from scratch on this machine's CPU (about 47 minutes on 2 cores)."""
    from ..world.train import TrainConfig, train_world

    config = TrainConfig.quick() if quick else TrainConfig()
    config.seed = seed
    with handled("interrupted: nothing was saved"):
        path = train_world(out_dir, config, log=lambda m: err.print(escape(m)))
    out.print(f"wrote {path}; measure it with: dpo-diff world card {path}", soft_wrap=True)


@world_app.command("card")
def world_card(
    folder: Annotated[str, typer.Argument(help="A trained world folder.")],
    n: Annotated[int, typer.Option(help="Held-out single-object prompts.")] = 200,
) -> None:
    """Measure a trained world (scorer, generator, rare synonyms, negative prompts) and write README.md."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        fail(f"no such folder '{folder}': train a world first with: dpo-diff world train --out {folder}")
    if not (path / "model_index.json").is_file() or not (path / "scorer").is_dir():
        fail(f"'{folder}' is not a trained world (no model_index.json and scorer/): train one with: "
             f"dpo-diff world train --out {folder}")
    if n < 1:
        fail(f"--n must be at least 1, not {n}")
    from .. import engine as engines
    from ..world.card import write_card
    from ..world.quality import measure, measure_stages

    progress = progress_display(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    out.print(f"measuring {folder}: {measure_stages()} stages on {n} held-out prompts x 2 seeds", soft_wrap=True)
    with handled("interrupted: nothing written"), progress:
        bar = progress.add_task("world card: loading", total=measure_stages())
        engine = engines.load(folder)
        report = measure(engine, n=n, progress=lambda d, t, what: progress.update(bar, completed=d, description=what))
        written = write_card(folder, report)
    out.print(f"wrote {written}", soft_wrap=True)
