"""Schedules for the timestep t_i at which the gradient is taken, in steps of a 50-step run.

``step-a-b``: progressive, t_i = a + i // b (the paper's default ``step-15-2``);
``rand-a-b``: uniform in [a, b); ``fix-n``: always n. A run with S sampling steps uses
round(t_i * S / 50) no-grad steps before the grad steps.
"""

from __future__ import annotations

import random

from ..errors import DpoDiffError

REFERENCE_STEPS = 50


def timestep_schedule(spec: str, iterations: int, rng: random.Random) -> list[int]:
    """t_i (out of 50) for each of ``iterations`` gradient iterations."""
    mode, *rest = spec.split("-")
    try:
        args = [int(x) for x in rest]
    except ValueError:
        args = []
    if mode == "step" and len(args) == 2 and args[1] > 0:
        return [args[0] + i // args[1] for i in range(iterations)]
    if mode == "rand" and len(args) == 2 and args[0] < args[1]:
        return [rng.randrange(args[0], args[1]) for _ in range(iterations)]
    if mode == "fix" and len(args) == 1:
        return [args[0]] * iterations
    raise DpoDiffError(f"unknown timestep schedule '{spec}': use step-A-B, rand-A-B or fix-N")


def to_run_steps(t: int, steps: int, k: int) -> int:
    """The no-grad step count for t_i out of 50, in a run of ``steps`` with ``k`` grad steps."""
    return max(0, min(round(t * steps / REFERENCE_STEPS), steps - k))
