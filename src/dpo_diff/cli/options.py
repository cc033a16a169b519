"""CLI options generated from :class:`~dpo_diff.config.RunConfig`: declared once, there.

``@run_options(task)`` gives a command every RunConfig option for that task (its help from the
field) and hands the command one ``config: RunConfig`` instead of twenty arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Optional

import typer

from ..config import RunConfig, fields_for
from ..errors import DpoDiffError
from .common import fail

_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def _cli_type(f: dataclasses.Field) -> Any:
    """The option's type on the command line: its ``cli_type``, else the first plain type of the annotation."""
    kind = f.metadata.get("cli_type")
    if kind is None:
        first = str(f.type).split("|")[0].strip()
        kind = _TYPES[first]
    return Optional[kind] if f.default is None else kind  # noqa: UP045  (typer reads Optional)


def _parameter(f: dataclasses.Field, default: Any) -> inspect.Parameter:
    flag = ("--" + f.name.replace("_", "-"),) if f.default is False else ()  # a plain switch, no --no-... twin
    option = typer.Option(*flag, help=f.metadata["help"], envvar=f.metadata.get("envvar"), rich_help_panel="Run options")
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[_cli_type(f), option])


def run_options(task: str | None = None, *, only: Iterable[str] | None = None, skip: Iterable[str] = (),
                defaults: dict[str, Any] | None = None) -> Callable:
    """Add the RunConfig options of ``task`` (None: every task's) to a command.

    The command declares its own parameters plus ``config: RunConfig``; ``only`` / ``skip`` pick
    options, ``defaults`` changes a default for this command. A bad combination of values is
    refused in one line before anything heavy is imported.
    """
    only = set(only) if only is not None else None
    defaults = defaults or {}

    def wrap(func: Callable) -> Callable:
        signature = inspect.signature(func)
        hints = typing.get_type_hints(func, include_extras=True)  # the command's own annotations, resolved
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in signature.parameters.values() if p.name != "config"]
        names = {p.name for p in own}
        chosen = [f for f in fields_for(task)
                  if f.name not in names and f.name not in skip and (only is None or f.name in only)]
        extra = [_parameter(f, defaults.get(f.name, f.default)) for f in chosen]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            mine = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
            try:
                config = RunConfig.from_dict(kwargs)
            except DpoDiffError as error:
                fail(str(error), error.exit_code)
            return func(**mine, config=config)

        command.__signature__ = signature.replace(parameters=own + extra)
        command.__annotations__ = {p.name: p.annotation for p in own + extra}
        return command

    return wrap
