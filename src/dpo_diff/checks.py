"""Input checks that need no model: each bad value is refused in one line a user can act on.

Nothing here imports torch, so the CLI refuses a bad option before any heavy import.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Sequence

from .errors import DpoDiffError, SpaceError

DEFAULT_EVAL_SEEDS = 4
FIRST_EVAL_SEED = 1000  # held-out seeds counted from here, skipping any search seed
SPACE_PARTS = ("synonym", "antonym", "nplib")
NEGATIVE_PROMPT_PARTS = ("antonym", "nplib")


def check_prompt(prompt: str, allow_non_ascii: bool = False) -> str:
    """The prompt, stripped, or a one-line refusal."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise DpoDiffError("the prompt is empty: give the text you want an image of")
    prompt = " ".join(prompt.split())
    bad = [c for c in prompt if unicodedata.category(c).startswith("C")]
    if bad:
        raise DpoDiffError(f"the prompt contains a control character ({bad[0]!r})")
    if not allow_non_ascii:
        odd = next((c for c in prompt if not c.isascii()), None)
        if odd is not None:
            raise DpoDiffError(
                f"the prompt contains non-ASCII text ({odd!r}): search spaces are English; "
                "rewrite it, or pass --allow-non-ascii to keep such words fixed"
            )
    if not any(c.isalpha() for c in prompt):
        raise DpoDiffError("the prompt has no words to optimize")
    return prompt


def parse_seeds(seeds: int | str | Sequence[int]) -> list[int]:
    """``3`` -> [0, 1, 2]; ``"4,7"`` -> [4, 7]; a list as it is."""
    try:
        if isinstance(seeds, str):
            values = [int(s) for s in seeds.split(",") if s.strip()]
            if len(values) == 1 and "," not in seeds:
                values = list(range(values[0]))
        elif isinstance(seeds, int):
            values = list(range(seeds))
        else:
            values = [int(s) for s in seeds]
    except ValueError:
        raise DpoDiffError(f"--seeds '{seeds}': give a count (2) or a list (0,7)") from None
    if not values or any(not 0 <= v < 2**63 for v in values):
        raise DpoDiffError(f"--seeds '{seeds}': need at least one seed, each in [0, 2^63)")
    if len(values) > 1000:
        raise DpoDiffError(f"--seeds '{seeds}': {len(values)} seeds is more than the 1000 a run takes")
    return list(dict.fromkeys(values))


def resolve_eval_seeds(eval_seeds: int | str | Sequence[int] | None, search_seeds: Sequence[int]) -> list[int]:
    """``4`` -> four seeds from 1000 on, none a search seed; ``"7,9"`` or [7, 9] as given; 0 -> none."""
    if eval_seeds is None:
        eval_seeds = DEFAULT_EVAL_SEEDS
    search = set(search_seeds)
    try:
        if isinstance(eval_seeds, str):
            parts = [p for p in eval_seeds.split(",") if p.strip()]
            if len(parts) == 1 and "," not in eval_seeds:
                eval_seeds = int(parts[0])
            else:
                eval_seeds = [int(p) for p in parts]
        if isinstance(eval_seeds, int):
            if not 0 <= eval_seeds <= 1000:
                raise DpoDiffError(f"--eval-seeds {eval_seeds}: give a count in [0, 1000] or a list (1000,1001)")
            pool = (s for s in itertools.count(FIRST_EVAL_SEED) if s not in search)
            return list(itertools.islice(pool, eval_seeds))
        seeds = list(dict.fromkeys(int(s) for s in eval_seeds))
    except ValueError:
        raise DpoDiffError(f"--eval-seeds '{eval_seeds}': give a count (4) or a list (1000,1001)") from None
    if any(not 0 <= s < 2**63 for s in seeds):
        raise DpoDiffError(f"--eval-seeds '{eval_seeds}': each seed must be in [0, 2^63)")
    shared = sorted(search & set(seeds))
    if shared:
        raise DpoDiffError(
            f"--eval-seeds '{eval_seeds}' shares seed(s) {shared} with --seeds: held-out seeds must be new to the search"
        )
    return seeds


def parse_kind(kind: str) -> tuple[str, ...]:
    """``"antonym+nplib"`` -> ("antonym", "nplib"), refusing unknown parts in one line."""
    parts = tuple(p.strip().lower() for p in kind.split("+") if p.strip())
    bad = [p for p in parts if p not in SPACE_PARTS]
    if not parts or bad:
        raise SpaceError(
            f"unknown space '{kind}': use synonym, antonym, nplib or a combination such as antonym+nplib"
        )
    return tuple(dict.fromkeys(parts))


def check_guidance(space_kind: str, parts: Sequence[str], guidance: float, option: str = "--guidance") -> None:
    """Negative-prompt spaces need classifier-free guidance (few-step models run without it)."""
    if any(p in parts for p in NEGATIVE_PROMPT_PARTS) and guidance <= 1.0:
        raise DpoDiffError(
            f"the '{space_kind}' space optimizes the negative prompt, which only acts with "
            f"classifier-free guidance (guidance {guidance:g} here): use {option} above 1 or --space synonym"
        )
