"""Fan a batch out to Ray actors: one model per actor, results stream back to the driver.

How prompts are sharded: there is no fixed split. Each actor holds one prompt at a time;
when it returns, the driver writes that result (images, then the store row) and hands the
actor the next prompt still to do. Fast and slow prompts balance themselves, and a prompt is
never running in two places. Only the driver touches the results store, so a Ray run resumes
exactly like a run without Ray, and actors need no shared file system.

An actor that dies (its process killed, its node lost) is replaced and its prompt is given to
the replacement; a prompt that takes down ``MAX_ATTEMPTS`` actors stops the batch with one line
(everything finished so far is stored). An error the prompt's run raises (bad options) stops
the batch as it would without Ray.

Actors get one GPU each (``num_gpus=1``) when the cluster has GPUs, else they run on CPUs.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator

from ..errors import DpoDiffError
from .sources import PromptRecord

MAX_ATTEMPTS = 3
ACTOR_NAME = "PromptWorker"


def require_ray():
    """The ``ray`` module, or a one-line refusal naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise DpoDiffError("--ray needs Ray: pip install 'dpo-diff[ray]'") from None
    return ray


class PromptWorker:
    """A Ray actor: loads the model once (in :meth:`setup`), then runs prompts."""

    def __init__(self) -> None:
        self.engine = None

    def setup(self, model: str, scorer: str | None, device: str | None, threads: int | None) -> dict:
        import torch

        from ..api import load

        if threads:
            torch.set_num_threads(threads)
        os.environ.setdefault("DPO_DIFF_QUIET", "1")
        self.engine = load(model, scorer=scorer, device=device)
        return {"pid": os.getpid(), "device": str(self.engine.model.device)}

    def run(self, record: PromptRecord, task: str, filter: str | None, options: dict):
        from .runner import run_prompt

        return run_prompt(record, task, self.engine, filter, options)


def _connect(ray, address: str) -> bool:
    """Join the cluster at ``address`` (``auto``: this node's cluster, else a new local one).

    Returns True when this call started Ray (and so should shut it down).
    """
    if ray.is_initialized():
        return False
    kwargs = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
    try:
        if address == "auto":
            ray.init(**kwargs)  # RAY_ADDRESS or a `ray start` cluster on this node, else a local instance
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DpoDiffError(f"cannot join the Ray cluster '{address}': {first}") from None
    return True


def _task_error(err: Exception) -> Exception:
    """The exception a prompt's run raised inside an actor, as the driver should raise it."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, (DpoDiffError, KeyboardInterrupt)):
        return cause
    return err


def run_on_ray(
    todo: list[PromptRecord],
    task: str,
    model: str,
    filter: str | None,
    options: dict,
    address: str,
    actors: int | None,
    on_event: Callable[[str], None],
) -> Iterator:
    """Yield each prompt's :class:`~dpo_diff.batch.runner.PromptOutcome` as an actor finishes it."""
    ray = require_ray()
    from ray.exceptions import RayActorError, RayTaskError

    options = dict(options)
    device = options.pop("device", None)
    started_ray = _connect(ray, address)
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    count = actors or (gpus if gpus else max(1, cpus // 4))
    if count < 1:
        raise DpoDiffError(f"--actors must be at least 1, not {count}")
    count = min(count, len(todo))
    if gpus:
        remote = ray.remote(num_gpus=1, num_cpus=1)(PromptWorker)
        device = device or "cuda"
        threads = None
    else:
        remote = ray.remote(num_cpus=1)(PromptWorker)
        device = device or "cpu"
        threads = max(1, cpus // count)
    remote = remote.options(max_restarts=0)  # the driver replaces a lost actor itself
    scorer = options.get("scorer")

    def start_actor():
        actor = remote.remote()
        try:
            ray.get(actor.setup.remote(model, scorer, device, threads))
        except RayTaskError as err:
            ray.kill(actor)
            raise _task_error(err) from None
        return actor

    pool = []
    pending = deque(todo)
    in_flight: dict = {}
    attempts: dict[str, int] = {}
    try:
        pool = [start_actor() for _ in range(count)]
        on_event(f"{count} Ray actor(s) on {'GPU' if gpus else 'CPU'} ({cpus} CPUs, {gpus} GPUs in the cluster)")

        def submit(slot: int) -> None:
            record = pending.popleft()
            in_flight[pool[slot].run.remote(record, task, filter, options)] = (slot, record)

        for slot in range(count):
            if pending:
                submit(slot)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            slot, record = in_flight.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except RayActorError as err:
                attempts[record.text] = attempts.get(record.text, 0) + 1
                if attempts[record.text] >= MAX_ATTEMPTS:
                    raise DpoDiffError(
                        f"the prompt {record.text!r} took down {MAX_ATTEMPTS} Ray actors; stopping "
                        "(finished prompts are stored: rerun to resume)"
                    ) from err
                on_event(f"a Ray actor was lost while running {record.text!r}; replaced it and retried the prompt")
                ray.kill(pool[slot])
                pool[slot] = start_actor()
                pending.appendleft(record)
                submit(slot)
                continue
            except RayTaskError as err:
                raise _task_error(err) from None
            if pending:
                submit(slot)  # before the driver writes: the actor keeps working meanwhile
            yield outcome
    finally:
        for actor in pool:
            ray.kill(actor)
        if started_ray:
            ray.shutdown()
