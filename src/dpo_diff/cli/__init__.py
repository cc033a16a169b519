"""``dpo-diff``: the command line, a thin shell over :mod:`dpo_diff.api`.

One module per group of commands (``optimize``: enhance / attack / space; ``batch``: run /
evaluate / report; ``compare``; ``world``), each with a ``register(app)``. Run options come from
:class:`~dpo_diff.config.RunConfig` (``options.py``); errors, quieting and progress are shared
(``common.py``). Nothing heavy is imported until a command needs it.
"""

from __future__ import annotations

import signal

import typer

from . import batch, compare, optimize, world
from .common import err, quiet, state

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"max_content_width": 100},
    help="Discrete prompt optimization for text-to-image diffusion models (DPO-Diff).",
)


@app.callback()
def _quiet_libraries(ctx: typer.Context) -> None:
    """Every command runs with library chatter off (scoped: undone when the command ends)."""
    ctx.with_resource(quiet())


for group in (optimize, batch, compare, world):
    group.register(app)


def _on_stop_signal(signum: int, _frame) -> None:
    """SIGINT and SIGTERM both stop the command as Ctrl-C does (finished work kept, one line)."""
    state.stop_signal = signum
    raise KeyboardInterrupt


def main() -> None:
    """The ``dpo-diff`` entry point: SIGTERM handled like SIGINT, and no interrupt goes unreported."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_stop_signal)
    try:
        app()
    except SystemExit as exit_:
        if exit_.code == 130 and not state.reported:  # stopped before a command could say anything
            _fail_interrupted()
        raise
    except BaseException:
        if state.stop_signal is None:
            raise
        # stopped while a library was importing or loading: it may have turned the interrupt
        # into an exception of its own; the user asked to stop, so that is what is said
        _fail_interrupted()


def _fail_interrupted() -> None:
    if not state.reported:
        word = "stopped by SIGTERM" if state.stop_signal == signal.SIGTERM else "interrupted"
        err.print(f"[red]error:[/red] {word} before the command could finish; run it again", soft_wrap=True)
    raise SystemExit(143 if state.stop_signal == signal.SIGTERM else 130) from None


__all__ = ["app", "main"]
