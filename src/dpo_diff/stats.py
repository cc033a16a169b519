"""Paired statistics for comparing two configurations on the same prompts.

Two solvers (or spaces) run on the same prompts and seeds are compared prompt by prompt:
the per-prompt difference of held-out loss in the task's direction, how often each side
wins (ties apart), and a percentile-bootstrap 95 % confidence interval of the mean
difference (seeded, so a table reproduces). No normality is assumed.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

TIE = 1e-9  # |difference| at or below this is a tie (the same best prompt renders the same images)


@dataclass(frozen=True)
class PairedComparison:
    """``a`` against ``b``: positive differences mean ``a`` did better."""

    a: str
    b: str
    n: int
    a_wins: int
    b_wins: int
    ties: int
    mean_difference: float
    ci_low: float
    ci_high: float

    @property
    def significant(self) -> bool:
        """The 95 % interval excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0

    def to_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant}


def bootstrap_ci(values: Sequence[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values``."""
    values = list(values)
    if len(values) < 2:
        m = values[0] if values else 0.0
        return m, m
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choice(values) for _ in range(n)) / n for _ in range(resamples))
    lo = means[int((1 - level) / 2 * resamples)]
    hi = means[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return lo, hi


def paired(
    a_name: str, a_losses: Sequence[float], b_name: str, b_losses: Sequence[float], maximize: bool = False, seed: int = 0
) -> PairedComparison:
    """Compare per-prompt losses of ``a`` and ``b`` (same prompts, same order). ``maximize``: attack."""
    if len(a_losses) != len(b_losses):
        raise ValueError("paired comparison needs the same prompts on both sides")
    diffs = [(a - b) if maximize else (b - a) for a, b in zip(a_losses, b_losses)]
    lo, hi = bootstrap_ci(diffs, seed=seed)
    return PairedComparison(
        a_name, b_name, len(diffs),
        sum(d > TIE for d in diffs), sum(d < -TIE for d in diffs), sum(abs(d) <= TIE for d in diffs),
        statistics.fmean(diffs) if diffs else 0.0, lo, hi,
    )


def sem(values: Sequence[float]) -> float:
    """Standard error of the mean (0 for fewer than two values)."""
    values = list(values)
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
