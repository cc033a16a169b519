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
from .worker import PromptOutcome, run_prompt

MAX_ATTEMPTS = 3
ACTOR_NAME = "PromptWorker"
SETUP_TIMEOUT_S = float(os.environ.get("DPO_DIFF_RAY_SETUP_TIMEOUT", 1800))  # loading SDXL on a cold node is slow


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

    def setup(self, config, threads: int | None) -> dict:
        import torch

        from ..engine import load_for
        from ..logs import set_progress_bars

        if threads:
            torch.set_num_threads(threads)
        set_progress_bars(False)
        self.engine = load_for(config)
        return {"pid": os.getpid(), "device": str(self.engine.model.device)}

    def run(self, record: PromptRecord, task: str, filter: str | None, config, llm) -> PromptOutcome:
        return run_prompt(record, task, self.engine, filter, config, llm)


def _reachable(address: str, timeout: float = 5.0) -> bool:
    """Whether ``[ray://]HOST:PORT`` accepts a TCP connection (Ray itself retries for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return True  # not host:port: let Ray judge it
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _connect(ray, address: str) -> bool:
    """Join the cluster at ``address`` (``auto``: this node's cluster, else a new local one).

    Returns True when this call started Ray (and so should shut it down).
    """
    if ray.is_initialized():
        return False
    if address != "auto" and not _reachable(address):
        raise DpoDiffError(f"cannot reach the Ray cluster at '{address}' (is `ray start --head` running there?)")
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


class RayExecutor:
    """The batch's prompts on Ray actors (see the module's doc); the runner's other executor."""

    def __init__(self, task: str, filter: str | None, config, llm, address: str, actors: int | None,
                 on_event: Callable[[str], None]):
        self.task, self.filter, self.config, self.llm = task, filter, config, llm
        self.address, self.actors, self.on_event = address, actors, on_event

    def outcomes(self, todo: list[PromptRecord]) -> Iterator[PromptOutcome]:
        return run_on_ray(todo, self.task, self.filter, self.config, self.llm, self.address, self.actors,
                          self.on_event)


def run_on_ray(
    todo: list[PromptRecord],
    task: str,
    filter: str | None,
    config,
    llm,
    address: str,
    actors: int | None,
    on_event: Callable[[str], None],
) -> Iterator[PromptOutcome]:
    """Yield each prompt's :class:`~dpo_diff.batch.worker.PromptOutcome` as an actor finishes it."""
    ray = require_ray()
    from ray.exceptions import GetTimeoutError, RayError, RayTaskError

    device = config.device
    if actors is not None and actors < 1:
        raise DpoDiffError(f"--actors must be at least 1, not {actors}")
    started_ray = _connect(ray, address)
    try:
        resources = ray.cluster_resources()
        free = ray.available_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        count = min(actors or (gpus if gpus else max(1, cpus // 4)), len(todo))
        if gpus:
            if device not in (None, "cuda"):
                raise DpoDiffError("with Ray each actor gets one GPU of its own: leave --device out")
            unit, slots, threads, device = {"num_gpus": 1, "num_cpus": 1}, int(free.get("GPU", 0)), None, "cuda"
        else:  # CPU actors share the cluster's CPUs, each reserving the threads it runs
            threads = max(1, cpus // count)
            unit, slots, device = {"num_cpus": threads}, int(free.get("CPU", 0)) // threads, device or "cpu"
        if slots < 1:
            raise DpoDiffError(f"the Ray cluster has no free {'GPU' if gpus else 'CPU'} for an actor now")
        if count > slots:
            on_event(f"--actors {count}: only {slots} free {'GPU' if gpus else 'CPU'} slot(s) in the cluster; using {slots}")
            count = slots
    except BaseException:
        if started_ray:
            ray.shutdown()
        raise
    remote = ray.remote(**unit)(PromptWorker).options(max_restarts=0)  # the driver replaces a lost actor itself
    actor_config = config.replace(device=device)

    def start_actors(n: int) -> list:
        """Start ``n`` actors and load the model in all of them at once; a one-line error if they cannot."""
        new = [remote.remote() for _ in range(n)]
        try:
            ray.get([a.setup.remote(actor_config, threads) for a in new], timeout=SETUP_TIMEOUT_S)
        except RayTaskError as err:
            _kill(ray, new)
            raise _task_error(err) from None
        except GetTimeoutError:
            _kill(ray, new)
            raise DpoDiffError(
                f"Ray actors did not load the model within {SETUP_TIMEOUT_S:.0f} s (no free resources, or a slow "
                "download?); finished prompts are stored: rerun to resume"
            ) from None
        except RayError as err:
            _kill(ray, new)
            raise DpoDiffError(f"a Ray actor died while loading the model: {_first_line(err)}") from None
        return new

    pool = []
    pending = deque(todo)
    in_flight: dict = {}
    attempts: dict[str, int] = {}
    try:
        pool = start_actors(count)
        on_event(f"{count} Ray actor(s) on {'GPU' if gpus else 'CPU'} ({cpus} CPUs, {gpus} GPUs in the cluster)")

        def submit(slot: int) -> None:
            record = pending.popleft()
            in_flight[pool[slot].run.remote(record, task, filter, actor_config, llm)] = (slot, record)

        for slot in range(count):
            if pending:
                submit(slot)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            slot, record = in_flight.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except RayTaskError as err:  # the prompt's run raised: stop as without Ray
                raise _task_error(err) from None
            except RayError as err:  # the actor is gone: killed, out of memory, node lost
                attempts[record.text] = attempts.get(record.text, 0) + 1
                if attempts[record.text] >= MAX_ATTEMPTS:
                    raise DpoDiffError(
                        f"the prompt {record.text!r} took down {MAX_ATTEMPTS} Ray actors; stopping "
                        "(finished prompts are stored: rerun to resume)"
                    ) from err
                on_event(f"a Ray actor was lost while running {record.text!r} ({_first_line(err)}); "
                         "replaced it and retried the prompt")
                _kill(ray, [pool[slot]])
                pool[slot] = start_actors(1)[0]
                pending.appendleft(record)
                submit(slot)
                continue
            if pending:
                submit(slot)  # before the driver writes: the actor keeps working meanwhile
            yield outcome
    finally:
        _kill(ray, pool)
        if started_ray:
            ray.shutdown()


def _kill(ray, actors: list) -> None:
    for actor in actors:
        try:
            ray.kill(actor)
        except Exception:  # noqa: BLE001 - already gone
            pass


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
