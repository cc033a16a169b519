"""The two tasks and the direction each one pushes an objective.

Enhancement makes the objective *better* (a lower CLIP distance, a higher PickScore); an attack
makes it *worse* with a prompt that keeps the meaning. :class:`Task` owns that rule once:
every solver, table and statistic asks it which way is "better" instead of testing the task's
name.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DpoDiffError


@dataclass(frozen=True)
class Task:
    name: str
    default_space: str
    wants_better_images: bool  # enhance: yes; attack: the images should get worse
    summary: str

    def minimizes(self, lower_is_better: bool = True) -> bool:
        """Whether the search minimizes the objective's value (else it maximizes it)."""
        return self.wants_better_images == lower_is_better

    def sign(self, lower_is_better: bool = True) -> float:
        """+1 when a lower value is progress for this task, -1 when a higher one is."""
        return 1.0 if self.minimizes(lower_is_better) else -1.0

    def change(self, initial: float, best: float, lower_is_better: bool = True) -> float:
        """How far ``best`` moved from ``initial`` in this task's direction (> 0: progress)."""
        return self.sign(lower_is_better) * (initial - best)

    def flagged(self, initial_faithfulness: float | None, best_faithfulness: float | None) -> bool:
        """Whether a judge (the world's) contradicts the objective: an enhanced prompt whose pictures
        it reads as less faithful is flagged and not counted as improved, whatever its loss says."""
        if not self.wants_better_images or initial_faithfulness is None or best_faithfulness is None:
            return False
        return best_faithfulness < initial_faithfulness - 1e-9

    def goal(self, lower_is_better: bool = True) -> str:
        """'lower' or 'higher': which values of the objective this task is after."""
        return "lower" if self.minimizes(lower_is_better) else "higher"


ENHANCE = Task("enhance", "antonym+nplib", True, "make the model draw the prompt better")
ATTACK = Task("attack", "synonym", False, "a meaning-preserving rewrite that makes the model fail")
TASKS = {t.name: t for t in (ENHANCE, ATTACK)}


def get_task(task: str | Task) -> Task:
    """The :class:`Task` named ``task``, or a one-line refusal."""
    if isinstance(task, Task):
        return task
    if task not in TASKS:
        raise DpoDiffError(f"unknown task '{task}': use enhance or attack")
    return TASKS[task]
