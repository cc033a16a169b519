"""Print the WordNet synonym and antonym spaces of 12 everyday prompts, before (frequency-based
ranking) and after (in-context ranking), for reading by hand.

    python benchmarks/space_review.py            # both
    python benchmarks/space_review.py --only new

The old spaces: single CLIP tokens, capped at 8 before the token filter, as on main before issue 9.
The new ones: what ``build_space`` gives now, multi-token candidates and multi-word lemmas kept
(marked "2 tok" and so on), the cap of 8 (antonyms 4) after every filter; synonyms after the
attack's meaning check, as ``dpo-diff space`` shows them (``--no-meaning-check``: without it).
``--fresh`` reads 12 other prompts, written after the rules were chosen.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PROMPTS = [
    "a large crimson circle on the left",
    "two dogs playing with a ball in the snow",
    "a green field with a red barn",
    "a plate of fresh fruit on a wooden table",
    "a blue sky over a sunny beach",
    "a man riding a bicycle in the city",
    "a little girl holding a balloon",
    "a tiny cat sleeping in a dark room",
    "an old castle on a hill at night",
    "a happy child eating ice cream",
    "a small boat on a calm lake",
    "a bright red apple in a bowl",
]


def old_space(prompt: str, relation: str, ids) -> list[tuple[str, list[str]]]:
    from dpo_diff.spaces.wordnet import wordnet_substitutes
    from dpo_diff.spaces.words import is_content_word, split_words

    out = []
    for w in split_words(prompt):
        if not is_content_word(w.text):
            continue
        cands = [c for c in wordnet_substitutes(w.text, relation) if len(ids(c)) == 1]
        if cands:
            out.append((w.text, cands))
    return out


FRESH_PROMPTS = [  # written after the rules above were chosen, to read them out of sample
    "a black dog running on the beach",
    "a young woman reading a book in a quiet library",
    "a red car parked on a busy street",
    "a cup of hot coffee on a wooden desk",
    "a tall tree in a green park",
    "an old man sitting on a bench",
    "a white horse in a large field",
    "a small house near a quiet river",
    "a bowl of soup on a kitchen table",
    "a yellow bird singing on a branch",
    "a cold winter morning in the mountains",
    "a cute baby laughing in a bright room",
]
CHECK = {"on": True}  # synonyms as an attack searches them: after its meaning check (dpo-diff space's default)


def new_space(prompt: str, relation: str, ids, single_tokens: bool = False) -> list[tuple[str, list[str]]]:
    from dpo_diff.constraints import MeaningConstraint
    from dpo_diff.spaces import build_space

    meaning = MeaningConstraint(prompt) if CHECK["on"] and relation == "synonym" else None
    space = build_space(prompt, relation, token_ids=ids, single_tokens=single_tokens, meaning=meaning)
    return [
        (s.label, [f"{c} ({sc:.2f}{f', {n} tok' if n > 1 else ''})"
                   for c, sc, n in zip(s.candidates[1:], s.scores[1:], s.tokens[1:])]) for s in space.slots
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=("old", "new"))
    ap.add_argument("--single-tokens", action="store_true",
                    help="the new spaces as before multi-token candidates (issue 9 items 1-2 only)")
    ap.add_argument("--fresh", action="store_true", help="the 12 prompts written after the rules were chosen")
    ap.add_argument("--no-meaning-check", action="store_true",
                    help="synonyms before the attack's meaning check (build_space without it, as before)")
    args = ap.parse_args(argv)
    CHECK["on"] = not args.no_meaning_check
    from dpo_diff.models import clip_tokenizer

    tok = clip_tokenizer()
    ids = lambda t: tok(t, add_special_tokens=False).input_ids  # noqa: E731
    for prompt in FRESH_PROMPTS if args.fresh else PROMPTS:
        print(f"\n== {prompt}")
        for relation in ("synonym", "antonym"):
            for name, fn in (("old", old_space), ("new", new_space)):
                if args.only and args.only != name:
                    continue
                started = time.time()
                slots = fn(prompt, relation, ids, args.single_tokens) if name == "new" else fn(prompt, relation, ids)
                print(f"  {relation:<8} {name} ({time.time() - started:.1f}s)")
                for label, cands in slots:
                    print(f"    {label}: {', '.join(cands)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
