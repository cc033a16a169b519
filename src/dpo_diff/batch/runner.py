"""Batch runs: many prompts, one model load, one results store, resumable at any moment."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from ..config import RunConfig, resolve_config
from ..engine import Engine, known_guidance
from ..errors import DpoDiffError
from ..models import default_model
from ..objectives import get_objective
from ..outputs import prepare_out_dir, write_files
from ..spaces import LLMConfig
from ..task import get_task
from .distributed import RayExecutor, require_ray
from .sources import PromptRecord, parse_filter
from .lock import StoreLock
from .store import ResultStore, disk_error
from .worker import LocalExecutor, PromptOutcome

@dataclass
class BatchStatus:
    done: int
    total: int
    current: str
    best_change: float | None
    seconds: float


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
    config: RunConfig | None = None,
    llm: LLMConfig | None = None,
    **options,
) -> dict[str, int]:
    """Optimize every prompt not yet in ``out``'s store; returns the store's counts by status.

    ``config`` and ``options`` are the run's options (:class:`~dpo_diff.config.RunConfig`).
    Re-running the same command resumes; the store keeps the whole resolved configuration and
    refuses to resume with any changed option. A KeyboardInterrupt stops after storing nothing
    of the prompt in flight, and is raised again for the caller. The folder is locked for the
    run (:class:`~dpo_diff.batch.store.StoreLock`): a second run on it is refused at once.
    ``llm`` (an :class:`~dpo_diff.spaces.LLMConfig`) overrides the config's endpoint for ``source="llm"``.

    ``ray`` (``"auto"`` or a cluster address) fans the prompts out to Ray actors, one model
    each (see :mod:`dpo_diff.batch.distributed`); this process alone writes the store, so
    resuming works the same either way. ``on_event`` hears about lost and replaced actors.
    """
    get_task(task)
    cfg = resolve_config(config, options)
    cfg.check(task)
    parse_filter(filter)  # refuse a bad filter before anything runs
    if ray is not None:
        require_ray()
        if isinstance(model, Engine):
            raise DpoDiffError("with Ray, give the model by name: each actor loads its own copy")
    folder = prepare_out_dir(out)
    check_batch_folder(folder)
    lock = StoreLock(folder)  # one writer per store: a second run is refused here, in one line
    store: ResultStore | None = None
    try:
        model = model or cfg.model or default_model()
        model_name = model.name if isinstance(model, Engine) else model
        cfg = cfg.replace(model=model_name)
        # the guidance optimize() will use, when known before loading (else stored as null: the model's own)
        config = {**cfg.stored(task, guidance=known_guidance(model_name), llm=llm), "filter": filter}
        store = ResultStore(folder, config=config)
        objective = get_objective(cfg.objective)  # the configuration is stored before any prompt runs
        prepare_image_dir(folder)
        finished = store.finished()
        todo = [p for p in prompts if p.text not in finished]
        total, done = len(prompts), len(prompts) - len(todo)
        started = time.perf_counter()
        if not todo:
            return store.counts()
        if ray is not None:
            executor = RayExecutor(task, filter, cfg, llm, ray, actors, on_event or (lambda _: None))
        else:
            executor = LocalExecutor(task, model, filter, cfg, llm)
        outcomes = executor.outcomes(todo)
        best_change = None
        if progress:
            progress(BatchStatus(done, total, todo[0].text, best_change, time.perf_counter() - started))
        with closing(outcomes):  # stops Ray actors at once if writing fails
            for outcome in outcomes:
                row = write_outcome(folder, store, outcome, config)
                done += 1
                if row["status"] == "done" and row["initial_loss"] is not None:
                    change = get_task(task).change(row["initial_loss"], row["best_loss"], objective.lower_is_better)
                    best_change = change if best_change is None else max(best_change, change)
                if progress:
                    current = todo[done - (total - len(todo))].text if done < total else ""
                    progress(BatchStatus(done, total, current, best_change, time.perf_counter() - started))
        return store.counts()
    finally:
        if store is not None:
            store.close()
        lock.release()


# What a batch folder holds: the store, its lock, images, and what evaluate / report / rescore write
BATCH_FILES = ("results.sqlite*", "results.lock", "images", "evaluation.*", "report.html", "loss_*.png",
               "rescore-*.json", ".*")


def check_batch_folder(folder: Path) -> None:
    """Refuse a non-empty folder that is not a dpo-diff results folder: a batch never mixes its
    files with a user's (or with a single run's result.json)."""
    foreign = sorted(p.name for p in folder.iterdir() if not any(p.match(g) for g in BATCH_FILES))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise DpoDiffError(
            f"--out '{folder}' is not empty and is not a dpo-diff results folder (it holds {shown}): "
            "use a new or empty folder"
        )


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
