"""What every command shares: the consoles, the one-line error, the error wrapper, quiet libraries,
progress displays, and the stop-signal state ``main`` keeps."""

from __future__ import annotations

import logging
import os
import signal
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from ..errors import DpoDiffError

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


class _State:
    """How the process was asked to stop (set by the handlers ``main`` installs), and whether the
    user has been told: an interrupt nobody reported gets its one line in ``main``."""

    stop_signal: int | None = None
    reported: bool = False


state = _State()


def fail(message: str, code: int = 2) -> None:
    """One ``error:`` line on stderr, then exit with ``code``.

    An interrupt (code 130) that came as SIGTERM says so and exits 143, as SIGTERM should.
    """
    if state.stop_signal is not None and code not in (130, 143):
        # a library may turn the interrupt into an error of its own (a failed lazy import): still the interrupt
        message, code = f"interrupted (while: {message})", 130
    if code == 130 and state.stop_signal == signal.SIGTERM:
        message, code = "stopped by SIGTERM" + message.removeprefix("interrupted"), 143
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    state.reported = True
    raise typer.Exit(code)


def interrupt_code() -> int:
    return 143 if state.stop_signal == signal.SIGTERM else 130


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


@contextmanager
def handled(interrupted: str | None = None, write_error: Callable[[OSError], str] | None = None) -> Iterator[None]:
    """The one error policy of every command: a :class:`DpoDiffError` is its one line and exit code;
    a failed write (``write_error`` given) says what could not be written; an interrupt
    (``interrupted`` given) says what was kept. Anything else is a bug and keeps its traceback."""
    try:
        yield
    except DpoDiffError as error:
        fail(str(error), error.exit_code)
    except OSError as error:
        if write_error is None:
            raise
        fail(write_error(error))
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        fail(interrupted, 130)


@contextmanager
def quiet() -> Iterator[None]:
    """Library chatter off the user's screen for one command: loading bars, notices, warnings as
    one yellow line. Restored afterwards (the CLI may run inside another program, e.g. tests)."""
    from ..logs import set_progress_bars

    for name in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY"):
        os.environ.setdefault(name, "error")  # read when those libraries are imported
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    transformers_log = logging.getLogger("transformers")
    level = transformers_log.level
    transformers_log.setLevel(logging.ERROR)
    set_progress_bars(False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"nltk\..*")
        warnings.filterwarnings("ignore", category=FutureWarning)

        def show(message, category, filename, lineno, file=None, line=None):
            err.print(f"[yellow]warning:[/yellow] {escape(str(message))}")

        warnings.showwarning = show  # catch_warnings puts the previous one back
        try:
            yield
        finally:
            set_progress_bars(True)
            transformers_log.setLevel(level)


def progress_display(*columns) -> Progress:
    """A transient progress display on stderr, off when stderr is not a terminal (no stray blank line)."""
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


def plural(n: int, word: str) -> str:
    """``1 prompt``, ``2 prompts``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def ints(option: str, text: str, what: str) -> list[int]:
    """Comma-separated positive whole numbers, or a one-line refusal."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{option} '{text}': give whole numbers of {what}, comma-separated")
    if not values or min(values) <= 0:
        fail(f"{option} '{text}': give positive numbers")
    return values
