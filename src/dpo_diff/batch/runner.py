"""Batch runs: many prompts, one model load, one results store, resumable at any moment."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from ..api import DEFAULT_GUIDANCE, Engine, check_prompt, load, optimize, parse_seeds
from ..errors import DpoDiffError
from ..heldout import resolve_eval_seeds
from ..models import default_model, preset_defaults
from ..outputs import image_files, prepare_out_dir, write_files
from ..spaces import LLMConfig
from .sources import PromptRecord, parse_filter
from .store import ResultStore, StoreLock, disk_error

# optimize() options that change results: stored once per run, checked on resume
CONFIG_KEYS = (
    "space", "solver", "budget", "seeds", "steps", "guidance", "seed", "source", "estimator", "k",
    "schedule", "iterations", "min_similarity", "nplib_size", "scorer", "eval_seeds", "gpo_style",
)


@dataclass
class BatchStatus:
    done: int
    total: int
    current: str
    best_change: float | None
    seconds: float


def image_dir_name(prompt: str) -> str:
    return hashlib.sha1(prompt.encode()).hexdigest()[:16]


@dataclass
class PromptOutcome:
    """One prompt's finished work, in memory: its store row and its image files.

    Built wherever the prompt ran (this process or a Ray actor); only the driver writes it.
    """

    row: dict
    files: dict[str, bytes] = field(default_factory=dict)


def run_batch(
    prompts: list[PromptRecord],
    out: str | Path,
    task: str = "enhance",
    model: str | Engine | None = None,
    filter: str | None = None,
    progress: Callable[[BatchStatus], None] | None = None,
    ray: str | None = None,
    actors: int | None = None,
    on_event: Callable[[str], None] | None = None,
    **options,
) -> dict[str, int]:
    """Optimize every prompt not yet in ``out``'s store; returns the store's counts by status.

    Re-running the same command resumes. A KeyboardInterrupt stops after storing nothing of
    the prompt in flight, and is raised again for the caller. The folder is locked for the
    run (:class:`~dpo_diff.batch.store.StoreLock`): a second run on it is refused at once.
    ``options`` may hold ``llm`` (an :class:`~dpo_diff.spaces.LLMConfig`) for ``source="llm"``.

    ``ray`` (``"auto"`` or a cluster address) fans the prompts out to Ray actors, one model
    each (see :mod:`dpo_diff.batch.distributed`); this process alone writes the store, so
    resuming works the same either way. ``on_event`` hears about lost and replaced actors.
    """
    if task not in ("enhance", "attack"):
        raise DpoDiffError(f"unknown task '{task}': use enhance or attack")
    parse_filter(filter)  # refuse a bad filter before anything runs
    if ray is not None:
        from .distributed import require_ray

        require_ray()
        if isinstance(model, Engine):
            raise DpoDiffError("with Ray, give the model by name: each actor loads its own copy")
    folder = prepare_out_dir(out)
    lock = StoreLock(folder)  # one writer per store: a second run is refused here, in one line
    store: ResultStore | None = None
    try:
        model = model or default_model()
        model_name = model.name if isinstance(model, Engine) else model
        defaults = {k: p.default for k, p in inspect.signature(optimize).parameters.items()}
        config = {"task": task, "model": model_name, "filter": filter}
        config.update({k: options.get(k, defaults.get(k)) for k in CONFIG_KEYS})
        if config["guidance"] is None:  # the model's default, as optimize() resolves it
            config["guidance"] = preset_defaults(model_name).get("guidance", DEFAULT_GUIDANCE)
        config["seeds"] = parse_seeds(config["seeds"])  # 2, "2" and [0, 1] are one configuration
        config["eval_seeds"] = resolve_eval_seeds(config["eval_seeds"], config["seeds"])  # likewise: the seeds
        config.update(llm_config(config["source"], options.get("llm")))
        store = ResultStore(folder, config=config)  # the configuration is stored before any prompt runs
        prepare_image_dir(folder)
        finished = store.finished()
        todo = [p for p in prompts if p.text not in finished]
        total, done = len(prompts), len(prompts) - len(todo)
        started = time.perf_counter()
        if not todo:
            return store.counts()
        if ray is not None:
            from .distributed import run_on_ray

            outcomes = run_on_ray(todo, task, model_name, filter, options, ray, actors, on_event or (lambda _: None))
        else:
            outcomes = _run_here(todo, task, model, filter, options)
        best_change = None
        if progress:
            progress(BatchStatus(done, total, todo[0].text, best_change, time.perf_counter() - started))
        with closing(outcomes):  # stops Ray actors at once if writing fails
            for outcome in outcomes:
                row = write_outcome(folder, store, outcome, config)
                done += 1
                if row["status"] == "done" and row["initial_loss"] is not None:
                    change = row["initial_loss"] - row["best_loss"]
                    change = change if task == "enhance" else -change
                    best_change = change if best_change is None else max(best_change, change)
                if progress:
                    current = todo[done - (total - len(todo))].text if done < total else ""
                    progress(BatchStatus(done, total, current, best_change, time.perf_counter() - started))
        return store.counts()
    finally:
        if store is not None:
            store.close()
        lock.release()


def llm_config(source: str, llm: LLMConfig | None) -> dict:
    """The LLM endpoint and model of a ``--source llm`` run, as stored in its configuration.

    Other sources store nothing (so stores made before this key existed still match); the API
    key is never stored.
    """
    if source != "llm":
        return {}
    llm = llm or LLMConfig()
    return {"llm": {"base_url": llm.base_url, "model": llm.model}}


def prepare_image_dir(folder: Path) -> Path:
    """``folder/images``, created and checked writable before the model loads."""
    images = folder / "images"
    try:
        images.mkdir(exist_ok=True)
        probe = images / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise disk_error(err, images) from None
    return images


def _run_here(todo: list[PromptRecord], task: str, model, filter: str | None, options: dict) -> Iterator[PromptOutcome]:
    """The prompts one after another in this process, with one model load."""
    options = dict(options)
    device = options.pop("device", None)
    engine = model if isinstance(model, Engine) else load(model, scorer=options.get("scorer"), device=device)
    for record in todo:
        yield run_prompt(record, task, engine, filter, options)


def run_prompt(record: PromptRecord, task: str, engine: Engine, filter: str | None, options: dict) -> PromptOutcome:
    """Optimize one prompt; the row and PNGs come back in memory (nothing is written here)."""
    base = {"prompt": record.text, "source": record.source, "row_id": record.row_id}
    if record.refusal is not None:  # refused when the file was read (not a string, too long)
        return PromptOutcome({**base, "status": "refused", "message": record.refusal})
    try:
        check_prompt(record.text, options.get("allow_non_ascii", False))
    except DpoDiffError as err:  # this prompt cannot be run (e.g. non-ASCII); the batch goes on
        return PromptOutcome({**base, "status": "refused", "message": str(err)})
    # any other error is the run's options: it stops the batch before anything is stored
    result = optimize(task, record.text, model=engine, accept_initial=parse_filter(filter), **options)
    if result.interrupted:
        raise KeyboardInterrupt
    image_dir = image_dir_name(record.text)
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
        "image_dir": None if result.filtered else f"images/{image_dir}",
        "result_json": json.dumps(data),
    }
    return PromptOutcome(row, files)


def write_outcome(folder: Path, store: ResultStore, outcome: PromptOutcome, config: dict) -> dict:
    """Images first, then the row in one transaction: a crash between them only costs a rerun.

    A failed write (full disk, file-size limit, a file where a folder should be) stops the
    batch with one line; every prompt stored before it is kept.
    """
    row = outcome.row
    if row.get("image_dir"):
        path = folder / row["image_dir"]
        try:
            path.mkdir(parents=True, exist_ok=True)
            write_files(path, outcome.files)
        except OSError as err:
            raise disk_error(err, err.filename or path) from None
    store.add(row, config)
    return row
