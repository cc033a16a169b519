"""What runs one prompt of a batch, and the executors that run many.

:func:`run_prompt` optimizes one prompt and returns its store row and PNGs in memory; it writes
nothing, so it can run anywhere. An executor turns the prompts still to do into outcomes:
:class:`LocalExecutor` here, one after another with one model load; the Ray executor in
:mod:`dpo_diff.batch.distributed` fans them out to actors. The runner only sees the interface.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..api import optimize
from ..checks import check_prompt
from ..config import RunConfig
from ..engine import Engine, load_for
from ..errors import DpoDiffError
from ..outputs import image_files
from ..spaces import LLMConfig
from .sources import PromptRecord, parse_filter


@dataclass
class PromptOutcome:
    """One prompt's finished work, in memory: its store row and its image files.

    Built wherever the prompt ran (this process or a Ray actor); only the driver writes it.
    """

    row: dict
    files: dict[str, bytes] = field(default_factory=dict)


def image_dir_name(prompt: str) -> str:
    return hashlib.sha1(prompt.encode()).hexdigest()[:16]


def run_prompt(
    record: PromptRecord, task: str, engine: Engine, filter: str | None, config: RunConfig, llm: LLMConfig | None = None
) -> PromptOutcome:
    """Optimize one prompt; the row and PNGs come back in memory (nothing is written here)."""
    base = {"prompt": record.text, "source": record.source, "row_id": record.row_id}
    if record.refusal is not None:  # refused when the file was read (not a string, too long)
        return PromptOutcome({**base, "status": "refused", "message": record.refusal})
    try:
        check_prompt(record.text, config.allow_non_ascii)
    except DpoDiffError as err:  # this prompt cannot be run (e.g. non-ASCII); the batch goes on
        return PromptOutcome({**base, "status": "refused", "message": str(err)})
    # any other error is the run's options: it stops the batch before anything is stored
    result = optimize(task, record.text, config, model=engine, llm=llm, accept_initial=parse_filter(filter))
    if result.interrupted:
        raise KeyboardInterrupt
    data = result.to_dict()
    files: dict[str, bytes] = {}
    if not result.filtered:
        names, files = image_files(result)
        data.update(names)
    row = {
        **base,
        "status": "filtered" if result.filtered else "done",
        "initial_loss": result.initial.loss,
        "best_prompt": result.best.prompt,
        "best_negative_prompt": result.best.negative_prompt,
        "best_loss": result.best.loss,
        "cost": result.cost,
        "seconds": round(result.seconds, 3),
        "message": result.message,
        "image_dir": None if result.filtered else f"images/{image_dir_name(record.text)}",
        "result_json": json.dumps(data),
    }
    return PromptOutcome(row, files)


class Executor(Protocol):
    """Runs prompts and yields their outcomes as they finish (in any order); ``close`` stops it."""

    def outcomes(self, todo: list[PromptRecord]) -> Iterator[PromptOutcome]: ...


class LocalExecutor:
    """The prompts one after another in this process, with one model load."""

    def __init__(self, task: str, model: str | Engine | None, filter: str | None, config: RunConfig,
                 llm: LLMConfig | None = None):
        self.task, self.model, self.filter, self.config, self.llm = task, model, filter, config, llm

    def outcomes(self, todo: list[PromptRecord]) -> Iterator[PromptOutcome]:
        cfg = self.config
        engine = self.model if isinstance(self.model, Engine) else load_for(cfg.replace(model=self.model))
        for record in todo:
            yield run_prompt(record, self.task, engine, self.filter, cfg, self.llm)
