"""Build a search space for a prompt: kind (what to search) x source (where words come from)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from ..checks import parse_kind
from ..errors import SpaceError
from .base import SearchSpace, Slot
from .llm import LLMConfig, llm_substitutes_and_cuts
from .nplib import nplib_slots
from .userfile import load_user_substitutes
from .vocabulary import known
from .words import Word, is_content_word, match_case, split_words

ANTONYM_CAP = 4  # the best-scored antonyms of the senses in use; further ones drift (tiny -> colossal)


def _substitutes(
    prompt: str, words: list[str], relation: str, source: str, llm: LLMConfig | None, cut: list[str] | None = None
) -> dict[str, list[str]]:
    """Each word -> the substitutes an LLM or a user file gives; what an LLM reply's caps cut is added to ``cut``."""
    if source == "llm":
        subs, llm_cut = llm_substitutes_and_cuts(prompt, [w.lower() for w in words], relation, llm)
        if cut is not None:
            cut.extend(llm_cut)
        return subs
    if Path(source).suffix.lower() == ".json" or Path(source).exists():
        return load_user_substitutes(source, relation)
    raise SpaceError(f"unknown space source '{source}': use wordnet, llm or a path to a JSON file")


def _scored(prompt: str, word: Word, relation: str, given: list[str] | None, dropped: list | None = None) -> list:
    """In-context scored candidates for one prompt word: WordNet's (multi-word lemmas included;
    what is left out goes to ``dropped`` as (candidate, reason)), or ``given`` ones scored alike."""
    from .context import Scored, embed, rank_substitutes

    if given is None:
        return rank_substitutes(
            prompt, word.start, word.end, relation, max_candidates=None, single_words=False, dropped=dropped
        )
    given = [c for c in dict.fromkeys(given) if c.lower() != word.text.lower()]
    if not given:
        return []
    scored = {s.text: s for s in rank_substitutes(
        prompt, word.start, word.end, relation, threshold=-1e9, max_candidates=None, extra=given
    )} if is_content_word(word.text) else {}
    out = []
    for cand in given:  # words WordNet cannot place still get the encoder's similarity
        if cand not in scored:
            variant = prompt[: word.start] + cand + prompt[word.end :]
            sim = float(embed([variant])[0] @ embed([prompt])[0])
            scored[cand] = Scored(cand, None, cand.lower(), round(sim, 4))
        out.append(scored[cand])
    return sorted(out, key=lambda s: -(s.score if s.score is not None else -1e9))


def build_space(
    prompt: str,
    kind: str,
    source: str = "wordnet",
    nplib_size: int = 4,
    llm: LLMConfig | None = None,
    token_ids: Callable[[str], list[int]] | None = None,
    max_candidates: int | None = 8,
    single_tokens: bool = False,
    vocabulary: Collection[str] | None = None,
    meaning: Callable[[str], bool] | None = None,
) -> SearchSpace:
    """The search space of ``kind`` for ``prompt``.

    Candidates come ranked by their in-context score (:mod:`.context`), WordNet's cut at the
    threshold chosen on LS07 trial (multi-word lemmas at their own, higher cut); an LLM's or a
    user file's are scored the same way, ranked, and kept (the attack's meaning check judges them).
    Candidates and prompt words of any token length are kept: random search and EPO render text,
    and GPO relaxes the single-token ones (:mod:`dpo_diff.relaxation`). With ``token_ids`` (a
    tokenizer without special tokens) each slot records its candidates' token counts; with
    ``single_tokens`` too, only what the relaxation can mix is kept (the space before issue 9).
    Substitutes of the prompt's words (synonym slots) pass two more filters when given:
    ``vocabulary``, the words the model knows (:mod:`.vocabulary`: the bundled world's captions),
    and ``meaning``, the attack's meaning check, which judges the prompt with that one substitution
    (a candidate it refuses alone could only be part of refused rewrites).
    ``max_candidates`` caps each slot after all these filters. Everything left out is listed in
    ``space.dropped`` with the reason.
    """
    parts = parse_kind(kind)
    words = split_words(prompt)
    content = list(dict.fromkeys(w.text.lower() for w in words if is_content_word(w.text)))
    slots: list[Slot] = []
    cut: list[str] = []  # candidates an LLM reply's caps removed
    external = source != "wordnet"

    def slot_for(word: Word, relation: str, given: list[str] | None):
        # WordNet's are already cut; an LLM's or a user's are scored and kept (the attack's
        # meaning check judges them like any other), low scores ranked last
        left_out: list = []
        scored = _scored(prompt, word, relation, given, left_out)
        label = word.text if relation == "synonym" else word.text.lower()
        cut.extend(f"{label}->{c}: {reason}" for c, reason in left_out)
        return scored

    if "synonym" in parts:
        subs = _substitutes(prompt, content, "synonym", source, llm, cut) if external else {}
        for w in words:
            if external and w.text.lower() not in subs:
                continue
            if not external and not is_content_word(w.text):
                continue
            given = [match_case(w.text, c) for c in subs[w.text.lower()]] if external else None
            kept = [s for s in slot_for(w, "synonym", given) if s.text.lower() != w.text.lower()]
            kept = list({s.text: s for s in kept}.values())
            if vocabulary is not None:
                cut.extend(f"{w.text}->{s.text}: not in the model's vocabulary" for s in kept
                           if not known(s.text, vocabulary))
                kept = [s for s in kept if known(s.text, vocabulary)]
            if meaning is not None:
                ok = [meaning(prompt[: w.start] + s.text + prompt[w.end :]) for s in kept]
                cut.extend(f"{w.text}->{s.text}: refused by the meaning check on its own"
                           for s, o in zip(kept, ok) if not o)
                kept = [s for s, o in zip(kept, ok) if o]
            if kept:
                slots.append(Slot(
                    w.text, (w.text, *(s.text for s in kept)), "positive", (w.start, w.end),
                    scores=(None, *(s.score for s in kept)), similarity=(None, *(s.similarity for s in kept)),
                ))
    if "antonym" in parts:
        subs = _substitutes(prompt, content, "antonym", source, llm, cut) if external else {}
        seen: set[str] = set()
        for w in words:
            low = w.text.lower()
            if low in seen or not is_content_word(w.text) or (external and low not in subs):
                continue
            seen.add(low)
            given = [c.lower() for c in subs[low]] if external else None
            kept = {}
            for s in slot_for(w, "antonym", given):
                if s.text.lower() != low and s.text.lower() not in kept:
                    kept[s.text.lower()] = s
            if kept:
                slots.append(Slot(
                    low, ("", *kept), "negative",
                    scores=(None, *(s.score for s in kept.values())),
                    similarity=(None, *(s.similarity for s in kept.values())),
                ))
    if "nplib" in parts:
        for label, cands in nplib_slots(nplib_size):
            slots.append(Slot(label, ("", *cands), "negative"))
    space = SearchSpace(prompt=prompt, slots=tuple(slots), kind="+".join(parts), dropped=tuple(dict.fromkeys(cut)))
    if token_ids is not None and single_tokens:
        space = restrict_to_single_tokens(space, token_ids)
    antonym_cap = min(ANTONYM_CAP, max_candidates) if max_candidates else ANTONYM_CAP
    space = space.capped(max_candidates, negative=antonym_cap)
    if token_ids is not None:
        space = space.with_token_counts(token_ids)
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
