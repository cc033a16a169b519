"""Batch runs: many prompts, one model load, one results store, resumable at any moment."""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..api import Engine, check_prompt, load, optimize, parse_seeds
from ..errors import DpoDiffError
from ..models import default_model
from ..outputs import prepare_out_dir, save_images
from .sources import PromptRecord, parse_filter
from .store import ResultStore

# optimize() options that change results: stored once per run, checked on resume
CONFIG_KEYS = (
    "space", "solver", "budget", "seeds", "steps", "guidance", "seed", "source", "estimator", "k",
    "schedule", "iterations", "min_similarity", "nplib_size", "scorer",
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


def run_batch(
    prompts: list[PromptRecord],
    out: str | Path,
    task: str = "enhance",
    model: str | Engine | None = None,
    filter: str | None = None,
    progress: Callable[[BatchStatus], None] | None = None,
    **options,
) -> dict[str, int]:
    """Optimize every prompt not yet in ``out``'s store; returns the store's counts by status.

    Re-running the same command resumes. A KeyboardInterrupt stops after storing nothing of
    the prompt in flight, and is raised again for the caller.
    """
    if task not in ("enhance", "attack"):
        raise DpoDiffError(f"unknown task '{task}': use enhance or attack")
    accept = parse_filter(filter)
    folder = prepare_out_dir(out)
    store = ResultStore(folder)
    try:
        model = model or default_model()
        model_name = model.name if isinstance(model, Engine) else model
        defaults = {k: p.default for k, p in inspect.signature(optimize).parameters.items()}
        config = {"task": task, "model": model_name, "filter": filter}
        config.update({k: options.get(k, defaults.get(k)) for k in CONFIG_KEYS})
        config["seeds"] = parse_seeds(config["seeds"])  # 2, "2" and [0, 1] are one configuration
        store.check_config(config)
        finished = store.finished()
        todo = [p for p in prompts if p.text not in finished]
        total, done = len(prompts), len(prompts) - len(todo)
        started = time.perf_counter()
        if not todo:
            return store.counts()
        engine = model if isinstance(model, Engine) else load(model, scorer=options.get("scorer"), device=options.pop("device", None))
        best_change = None
        for record in todo:
            if progress:
                progress(BatchStatus(done, total, record.text, best_change, time.perf_counter() - started))
            row = _run_one(record, folder, task, engine, accept, options)
            store.add(row, config)
            done += 1
            if row["status"] == "done" and row["initial_loss"] is not None:
                change = row["initial_loss"] - row["best_loss"]
                change = change if task == "enhance" else -change
                best_change = change if best_change is None else max(best_change, change)
        if progress:
            progress(BatchStatus(done, total, "", best_change, time.perf_counter() - started))
        return store.counts()
    finally:
        store.close()


def _run_one(record: PromptRecord, folder: Path, task: str, engine: Engine, accept, options: dict) -> dict:
    base = {"prompt": record.text, "source": record.source, "row_id": record.row_id}
    try:
        check_prompt(record.text, options.get("allow_non_ascii", False))
    except DpoDiffError as err:  # this prompt cannot be run (e.g. non-ASCII); the batch goes on
        return {**base, "status": "refused", "message": str(err)}
    # any other error is the run's options: it stops the batch before anything is stored
    result = optimize(task, record.text, model=engine, accept_initial=accept, **options)
    if result.interrupted:
        raise KeyboardInterrupt
    image_dir = image_dir_name(record.text)
    data = result.to_dict()
    if not result.filtered:
        path = folder / "images" / image_dir
        path.mkdir(parents=True, exist_ok=True)
        data.update(save_images(result, path))
    return {
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
