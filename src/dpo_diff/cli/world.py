"""``dpo-diff world``: train the bundled text-to-image world, measure it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import err, handled, out

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
    from .. import engine as engines
    from ..world.card import write_card
    from ..world.quality import measure

    with handled():
        engine = engines.load(folder, scorer=str(Path(folder) / "scorer"))
        path = write_card(folder, measure(engine, n=n))
    out.print(f"wrote {path}", soft_wrap=True)
