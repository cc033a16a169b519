"""The compact search space: per word (or library slot), a few candidate substitutes.

A :class:`SearchSpace` is plain data. ``positive`` slots substitute words of the user's
prompt (candidate 0 is the original word); ``negative`` slots make up the negative prompt
(candidate 0 is the empty string, i.e. "say nothing"). A *choice* is one candidate index
per slot; :meth:`SearchSpace.render` turns it into the (prompt, negative prompt) pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

Target = Literal["positive", "negative"]
Choice = tuple[int, ...]


@dataclass(frozen=True)
class Slot:
    """One discrete decision: which of ``candidates`` to use."""

    label: str
    candidates: tuple[str, ...]
    target: Target
    span: tuple[int, int] | None = None  # character span in the user prompt (positive slots)
    # per candidate (None for candidate 0): in-context score (higher fits the sentence better) and
    # the meaning check's similarity of the prompt with that one substitution
    scores: tuple[float | None, ...] | None = None
    similarity: tuple[float | None, ...] | None = None
    # per candidate: its number of tokens on the run's tokenizer (0 for the empty one), when known;
    # GPO relaxes the single-token ones, random search and EPO take any (see dpo_diff.relaxation)
    tokens: tuple[int, ...] | None = None

    def to_dict(self) -> dict:
        d = {"label": self.label, "target": self.target, "candidates": list(self.candidates)}
        if self.span is not None:
            d["span"] = list(self.span)
        if self.scores is not None:
            d["scores"] = list(self.scores)
        if self.similarity is not None:
            d["similarity"] = list(self.similarity)
        if self.tokens is not None:
            d["tokens"] = list(self.tokens)
        return d

    def keep(self, indices: Sequence[int]) -> Slot:
        """The slot with only the candidates at ``indices`` (scores follow)."""
        pick = lambda xs: None if xs is None else tuple(xs[i] for i in indices)  # noqa: E731
        return replace(
            self, candidates=pick(self.candidates), scores=pick(self.scores), similarity=pick(self.similarity),
            tokens=pick(self.tokens),
        )


@dataclass(frozen=True)
class SearchSpace:
    """The user prompt plus the slots that can change it."""

    prompt: str
    slots: tuple[Slot, ...]
    kind: str
    dropped: tuple[str, ...] = field(default=())  # candidates removed, with the reason

    @property
    def is_empty(self) -> bool:
        return not self.slots

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(s.candidates) for s in self.slots)

    @property
    def size(self) -> int:
        """Number of distinct choices."""
        return math.prod(self.sizes) if self.slots else 1

    @property
    def initial_choice(self) -> Choice:
        """Candidate 0 everywhere: the user prompt, with an empty negative prompt."""
        return (0,) * len(self.slots)

    def positive_slots(self) -> list[int]:
        return [i for i, s in enumerate(self.slots) if s.target == "positive"]

    def negative_slots(self) -> list[int]:
        return [i for i, s in enumerate(self.slots) if s.target == "negative"]

    def render(self, choice: Sequence[int]) -> tuple[str, str]:
        """(prompt, negative prompt) for a choice."""
        if len(choice) != len(self.slots):
            raise ValueError(f"choice has {len(choice)} entries for {len(self.slots)} slots")
        prompt = self.prompt
        edits = sorted(
            ((s.span, s.candidates[c]) for s, c in zip(self.slots, choice) if s.target == "positive"),
            key=lambda e: e[0][0],
            reverse=True,
        )
        for (start, end), word in edits:
            prompt = prompt[:start] + word + prompt[end:]
        negative = ", ".join(
            s.candidates[c] for s, c in zip(self.slots, choice) if s.target == "negative" and s.candidates[c]
        )
        return prompt, negative

    def filter_candidates(self, keep: Callable[[Slot, str], bool], reason: str) -> SearchSpace:
        """Drop candidates (never candidate 0) for which ``keep`` is false; drop slots left with one."""
        slots, dropped = [], list(self.dropped)
        for slot in self.slots:
            kept = [0]
            for i, cand in enumerate(slot.candidates[1:], 1):
                if keep(slot, cand):
                    kept.append(i)
                else:
                    dropped.append(f"{slot.label}->{cand}: {reason}")
            if len(kept) > 1:
                slots.append(slot.keep(kept))
        return replace(self, slots=tuple(slots), dropped=tuple(dropped))

    def capped(self, max_candidates: int | None, negative: int | None = None) -> SearchSpace:
        """At most ``max_candidates`` substitutes per scored slot (``negative`` for scored negative
        slots), the best scored first, as ordered; unscored slots (nplib) are left whole."""
        dropped = list(self.dropped)

        def cap(slot: Slot) -> Slot:
            n = negative if slot.target == "negative" and negative else max_candidates
            if slot.scores is None or not n:
                return slot
            dropped.extend(f"{slot.label}->{c}: over the cap of {n}" for c in slot.candidates[n + 1 :])
            return slot.keep(range(min(len(slot.candidates), n + 1)))

        slots = tuple(cap(s) for s in self.slots)
        return replace(self, slots=slots, dropped=tuple(dropped))

    def with_token_counts(self, token_ids: Callable[[str], list[int]]) -> SearchSpace:
        """The space with each slot's candidates' token counts (``token_ids``: no special tokens)."""
        slots = tuple(
            replace(s, tokens=tuple(len(token_ids(c)) if c.strip() else 0 for c in s.candidates)) for s in self.slots
        )
        return replace(self, slots=slots)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "prompt": self.prompt,
            "size": self.size,
            "slots": [s.to_dict() for s in self.slots],
            "dropped": list(self.dropped),
        }
