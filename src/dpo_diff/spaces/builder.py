"""Build a search space for a prompt: kind (what to search) x source (where words come from)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import SpaceError
from .base import SearchSpace, Slot
from .llm import LLMConfig, llm_substitutes_and_cuts
from .nplib import nplib_slots
from .userfile import load_user_substitutes
from .words import is_content_word, match_case, split_words

SPACE_PARTS = ("synonym", "antonym", "nplib")


def parse_kind(kind: str) -> tuple[str, ...]:
    """``"antonym+nplib"`` -> ("antonym", "nplib"), refusing unknown parts in one line."""
    parts = tuple(p.strip().lower() for p in kind.split("+") if p.strip())
    bad = [p for p in parts if p not in SPACE_PARTS]
    if not parts or bad:
        raise SpaceError(
            f"unknown space '{kind}': use synonym, antonym, nplib or a combination such as antonym+nplib"
        )
    return tuple(dict.fromkeys(parts))


def _substitutes(
    prompt: str, words: list[str], relation: str, source: str, llm: LLMConfig | None, cut: list[str] | None = None
) -> dict[str, list[str]]:
    """Each word -> its substitutes; what an LLM reply's caps cut is added to ``cut``."""
    if source == "wordnet":
        from .wordnet import wordnet_substitutes

        return {w.lower(): wordnet_substitutes(w, relation) for w in words}
    if source == "llm":
        subs, llm_cut = llm_substitutes_and_cuts(prompt, [w.lower() for w in words], relation, llm)
        if cut is not None:
            cut.extend(llm_cut)
        return subs
    if Path(source).suffix.lower() == ".json" or Path(source).exists():
        return load_user_substitutes(source, relation)
    raise SpaceError(f"unknown space source '{source}': use wordnet, llm or a path to a JSON file")


def build_space(
    prompt: str,
    kind: str,
    source: str = "wordnet",
    nplib_size: int = 4,
    llm: LLMConfig | None = None,
    token_ids: Callable[[str], list[int]] | None = None,
) -> SearchSpace:
    """The search space of ``kind`` for ``prompt``.

    With ``token_ids`` (a tokenizer without special tokens), candidates that are not exactly
    one token are dropped, and so are positive slots whose original word is not one token:
    the gradient relaxation mixes one embedding per slot.
    """
    parts = parse_kind(kind)
    words = split_words(prompt)
    content = list(dict.fromkeys(w.text.lower() for w in words if is_content_word(w.text)))
    slots: list[Slot] = []
    cut: list[str] = []  # candidates an LLM reply's caps removed
    if "synonym" in parts:
        subs = _substitutes(prompt, content, "synonym", source, llm, cut)
        for w in words:
            cands = [match_case(w.text, c) for c in subs.get(w.text.lower(), []) if c.lower() != w.text.lower()]
            if cands:
                slots.append(Slot(w.text, (w.text, *dict.fromkeys(cands)), "positive", (w.start, w.end)))
    if "antonym" in parts:
        subs = _substitutes(prompt, content, "antonym", source, llm, cut)
        for w in content:
            cands = [c.lower() for c in subs.get(w, []) if c.lower() != w]
            if cands:
                slots.append(Slot(w, ("", *dict.fromkeys(cands)), "negative"))
    if "nplib" in parts:
        for label, cands in nplib_slots(nplib_size):
            slots.append(Slot(label, ("", *cands), "negative"))
    space = SearchSpace(prompt=prompt, slots=tuple(slots), kind="+".join(parts), dropped=tuple(cut))
    if token_ids is not None:
        space = restrict_to_single_tokens(space, token_ids)
    return space


def restrict_to_single_tokens(space: SearchSpace, token_ids: Callable[[str], list[int]]) -> SearchSpace:
    """Keep what the relaxation can represent: one token per candidate (the empty one aside)."""
    def one_token(_slot: Slot, cand: str) -> bool:
        return len(token_ids(cand)) == 1

    dropped = [f"{s.label}: the word itself is {len(token_ids(s.candidates[0]))} tokens"
               for s in space.slots if s.target == "positive" and len(token_ids(s.candidates[0])) != 1]
    kept = tuple(s for s in space.slots if s.target == "negative" or len(token_ids(s.candidates[0])) == 1)
    space = SearchSpace(space.prompt, kept, space.kind, space.dropped + tuple(dropped))
    return space.filter_candidates(one_token, "more than one token")
