"""Substitutes chosen in context: the word's part of speech, lemma and sense come from the prompt.

Steps, all offline:

1. **Part of speech** from a small rule tagger over the prompt (determiners, prepositions, the
   verb "be", modals, noun-phrase order), choosing among the parts of speech that lemminflect's
   bundled lexicon and WordNet both know for the word; WordNet corpus frequency breaks ties.
   No maintained package on the package index ships an English tagger model with its data
   (NLTK's and TextBlob's download theirs; spaCy's models come from GitHub, the PyPI copies are
   third-party re-uploads), hence the rules.
2. **Lemma and inflection** from lemminflect: the substitute takes the original's Penn tag
   (plural, past, gerund, comparative...), so comparatives appear only where the original is one.
3. **Sense and candidates** ranked against the sentence with the offline sentence encoder
   (all-MiniLM-L6-v2, shared with the meaning check): each candidate's score combines
   ``fit`` (cosine between the sentence and the sentence with the candidate substituted),
   ``target`` (cosine of the word's contextual token vector with and without the substitution),
   ``sense`` (cosine between the sentence and the gloss of the best WordNet sense holding the
   candidate) and WordNet frequency priors. Weights and the cut were chosen on the LS07 trial
   set only (``benchmarks/lexsub.py --tune``); the cap is applied after every filter.
4. **Antonyms of the sense in use**: the antonyms of the senses that fit the sentence best
   ("on the left" -> right, not the verb "leave" -> arrive), and of their similar-to heads for
   adjective satellites ("tiny" -> small's antonyms: large, big).

Longer than 300 lines because the four steps share one set of cached WordNet lookups and
sentence encodings, and the measured weights sit beside the features they weigh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .wordnet import similar_tos
from .words import is_content_word, match_case

# A candidate's score is WEIGHTS . features, the features being
#   0  1 (the constant)
#   1  fit: cosine of the +-WINDOW words around the word with and without the substitution
#   2  word: cosine of the two words alone
#   3  sense: gloss-to-sentence cosine of the best sense offering the candidate
#   4  sense - the best sense's
#   5  1 / (1 + that sense's place by gloss fit) (weight 0: dropped, see below; kept for the pruning)
#   6  log(1 + the lemma's count in that sense)
#   7  log(1 + the sense's WordNet rank)
#   8  relation (1 same synset, 0 similar-to, -1 further)
#   9  log(1 + the candidate lemma's WordNet corpus count)
#   10 target: cosine of the word's contextual token vector (encoder's last layer, mean over its word
#      pieces) in the window with and without the substitution (Zhou et al. 2019's substitute validation)
#   11 log(1 + the sense's WordNet corpus count: all its lemmas' counts)
#   12 stem: 1 if the candidate shares the word's stem ("tight" -> "skin-tight", "tight-fitting")
# Logistic regression on LS07 TRIAL (benchmarks/lexsub.py --tune --features 1,2,3,4,6,7,8,9,10,11,12),
# never on test; L2 10, the best of 0.1/1/10/100 by 5-fold cross-validated P@1 on trial (folds by
# target lemma). Chosen on trial by cross-validation (within-instance AUC / MRR / P@1 of held-out
# lemmas, L2 10): the first ten features 0.759 / 0.703 / 0.330; + target 0.775 / 0.718 / 0.333;
# these weights' features 0.813 / 0.753 / 0.353 (with 1/place: 0.814 / 0.745 / 0.347; backward
# elimination by MRR over all tried features dropped 1/place first, then stopped).
# Tried and left out (no gain on trial, same measures): the wordfreq Zipf frequency of the candidate
# (with all others 0.805 / 0.733 / 0.337, without 0.810 / 0.741 / 0.343), the mean cosine of the
# other tokens' contextual vectors (0.759 / 0.702 / 0.330 added to the first ten), the mean of the
# last four layers or the whole sentence instead of the last layer over the +-5 word window (P@1
# within 0.01 either way).
# Refitted after similar-to sets became ordered; before: (-6.4171, 2.3187, 3.3699, 2.4049, 7.0812,
# 0.1304, 0.3021, -0.5785, 0.6025, 0.083) on the first ten, cut -2.4, multi-word cut -0.3.
WINDOW = 5
# The meaning check (constraints.py) keeps the weights its SENSE_CUT was chosen with (on its own dev
# set): main's weights before this refit, zero on the features added since. Refit it there, not here.
MEANING_WEIGHTS = (-6.4171, 2.3187, 3.3699, 2.4049, 7.0812, 0.1304, 0.3021, -0.5785, 0.6025, 0.083, 0.0, 0.0, 0.0)
WEIGHTS = (-3.8113, -0.4293, 1.1232, 2.1434, 6.6847, 0.0, 0.3886, -0.7397, 0.6573, 0.0437, 3.5713, -0.1972, -1.9025)
# Candidates scoring below this are cut: on LS07 trial, the cut with the best precision that keeps
# coverage >= 85 % at cap 8 (lexsub.py --tune). The score is the logit of "an annotator wrote it".
# Trial (single words): coverage 86.7 %, precision 0.224, P@1 0.343, P@1cov 0.396.
SYNONYM_THRESHOLD = -2.6
# Multi-word lemmas ("motor car") are scored by the same weights (fitted on single words) and cut
# higher: on LS07 trial only 9 of their 410 candidates are annotators' words; the same rule as
# above (best precision keeping coverage >= 85 % at cap 8) picks -0.4 (lexsub.py --tune-multiword).
MULTIWORD_THRESHOLD = -0.4
# Antonyms are scored by the same weights (fitted for synonyms: how well the word fits the sentence)
# and cut at -1.5: read by hand on benchmarks/space_review.py's 12 development prompts (PROMPTS, cap
# 4), the lowest of the cuts -2.5 / -2.0 / -1.5 / -1.0 whose antonyms are at most 10 % wrong (-2.5:
# 7 of 37 wrong, -2.0: 3 of 28, -1.5: 1 of 21; no cut: 17 of 52). It also drops some right ones
# whose substitution moves the sentence far (man -> woman -5.1, happy -> unhappy -1.9).
ANTONYM_THRESHOLD = -1.5
SENSE_PLACES = 4


def keep_sense(place: int, rank: int) -> bool:
    """A synonym's sense is searched if it is among the SENSE_PLACES best by gloss fit, or WordNet's first two."""
    return place < SENSE_PLACES or rank < 2


# Antonyms come from the senses in use: the one placed first by gloss fit to the prompt
# (ANTONYM_SENSES = 1) and the word's most frequent WordNet sense (ANTONYM_RANKS = 1), with their
# similar-to heads for satellites. Before: also the sense placed second (ANTONYM_SENSES = 2), which
# let other senses' antonyms in (blue -> cheerful, tall -> easy). Chosen by reading the 12 prompts of
# benchmarks/space_review.py (its PROMPTS, the development set; FRESH_PROMPTS were read once after):
# the most frequent sense alone loses "quiet" -> "noisy" and "calm" -> "stormy" and was no better.
ANTONYM_SENSES = 1
ANTONYM_RANKS = 1

UPOS_TO_WN = {"NOUN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}
WN_TO_UPOS = {v: k for k, v in UPOS_TO_WN.items()}

_DETERMINERS = frozenset(
    "a an the this that these those my your his her its our their some any each every no many several "
    "two three four five six seven eight nine ten few both another".split()
)
_PREPOSITIONS = frozenset(
    "of on in at to for from by with without within into onto upon over under above below between among "
    "through during before after about against along across behind beyond near off like around beside".split()
)
_BE = frozenset("is are was were be been being am seem seems looks look become becomes".split())
_DEGREE = frozenset("very so too quite rather extremely more most less least really".split())
_VERB_BEFORE = frozenset(
    "to will would can could shall should may might must do does did not i you we they he she it who "
    "which that".split()
)


@dataclass(frozen=True)
class Scored:
    """One candidate substitute with its in-context score (higher: fits the sentence better)."""

    text: str
    score: float
    lemma: str = ""
    similarity: float | None = None  # encoder cosine of the prompt with and without the substitution


def _pos_options(word: str) -> dict[str, str]:
    """{wordnet pos: lemma} the word can be, from lemminflect's lexicon and WordNet."""
    from lemminflect import getAllLemmas, getAllLemmasOOV

    from .wordnet import load_wordnet

    wn = load_wordnet()
    low = word.lower()
    found = getAllLemmas(low)
    out: dict[str, str] = {}
    for upos, wpos in UPOS_TO_WN.items():
        lemmas = list(found.get(upos, ()))
        if not lemmas:
            m = wn.morphy(low, wpos)
            lemmas = [m] if m else []
        for lemma in lemmas:
            if wn.synsets(lemma, pos=wpos):
                out[wpos] = lemma
                break
    if not out:
        for upos, wpos in UPOS_TO_WN.items():
            lemma = getAllLemmasOOV(low, upos).get(upos, (low,))[0]
            if wn.synsets(lemma, pos=wpos):
                out[wpos] = lemma
                break
    return out


def _frequency(lemma: str, pos: str) -> int:
    from .wordnet import load_wordnet

    wn = load_wordnet()
    return sum(
        l.count() for s in wn.synsets(lemma, pos=pos) for l in s.lemmas() if l.name().lower() == lemma.lower()
    )


@lru_cache(maxsize=50_000)
def _lemma_count(name: str) -> int:
    from .wordnet import load_wordnet

    return sum(l.count() for l in load_wordnet().lemmas(name.replace(" ", "_")))


def _graded(names: tuple[str, ...]) -> set[str]:
    """The comparatives and superlatives among ``names`` (WordNet lists "bigger" as a lemma)."""
    from lemminflect import getAllLemmas

    out = set()
    for name in names:
        base = getAllLemmas(name).get("ADJ", ()) + getAllLemmas(name).get("ADV", ())
        if base and name not in base and name.endswith(("er", "est")):
            out.add(name)
    return out


def _by_frequency(options: dict[str, str]) -> str:
    order = ("n", "a", "v", "r")
    return max(options, key=lambda p: (_frequency(options[p], p), -order.index(p)))


def tag(tokens: list[str]) -> list[str | None]:
    """WordNet part of speech (n, v, a, r) of each token that has senses; None for the others."""
    tags: list[str | None] = []
    options = [(_pos_options(t) if is_content_word(t) else {}) for t in tokens]
    for i, tok in enumerate(tokens):
        opts = options[i]
        if not opts:
            tags.append(None)
            continue
        if len(opts) == 1:
            tags.append(next(iter(opts)))
            continue
        prev = tokens[i - 1].lower() if i > 0 else ""
        prev_tag = tags[i - 1] if i > 0 else None
        nxt_opts = options[i + 1] if i + 1 < len(tokens) else {}
        low = tok.lower()
        choice = None
        if prev in _VERB_BEFORE and "v" in opts:
            choice = "v"
        elif prev in _BE:
            if "v" in opts and low.endswith(("ing", "ed")):
                choice = "v"
            elif "a" in opts:
                choice = "a"
        elif prev in _DEGREE and ("a" in opts or "r" in opts):
            choice = "a" if "a" in opts else "r"
        elif prev in _DETERMINERS or prev in _PREPOSITIONS or prev_tag == "a":
            # inside a noun phrase: a modifier when a noun follows, else the head noun
            if "a" in opts and "n" in nxt_opts:
                choice = "a"
            elif "n" in opts:
                choice = "n"
            elif "a" in opts:
                choice = "a"
        elif prev_tag == "n" and "v" in opts and low.endswith(("ing", "ed", "s")):
            choice = "v"
        elif low.endswith("ly") and "r" in opts:
            choice = "r"
        tags.append(choice or _by_frequency(opts))
    return tags


# ---------------------------------------------------------------- encoder, with a cache


class _Embeddings:
    def __init__(self):
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing and len(self.cache) + len(missing) > 200_000:
            self.cache.clear()  # before, not after, encoding: the texts asked for must stay
            missing = list(dict.fromkeys(texts))
        if missing:
            from ..sentence import sentence_encoder as _encoder

            vecs = _encoder(None).encode(missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            for t, v in zip(missing, vecs):
                self.cache[t] = v.astype(np.float32)
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


embed = _Embeddings()


class _TokenEmbeddings:
    """The encoder's contextual token vectors (unit length) and each token's character span, per text;
    the same forward pass also fills :data:`embed`'s sentence cache (no second encoding)."""

    def __init__(self, limit: int = 20_000):
        self.cache: dict[str, tuple[np.ndarray, list[tuple[int, int]]]] = {}
        self.limit = limit

    def __call__(self, texts: list[str]) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing and len(self.cache) + len(missing) > self.limit:
            self.cache.clear()
            missing = list(dict.fromkeys(texts))
        if missing:
            from ..sentence import sentence_encoder as _encoder

            model = _encoder(None)
            outs = model.encode(missing, batch_size=64, output_value=None, normalize_embeddings=True, convert_to_numpy=True)
            spans = model.tokenizer(missing, return_offsets_mapping=True, add_special_tokens=True)["offset_mapping"]
            for t, o, sp in zip(missing, outs, spans):
                toks = np.asarray(o["token_embeddings"], dtype=np.float32)
                toks /= np.linalg.norm(toks, axis=1, keepdims=True) + 1e-9
                self.cache[t] = (toks, [tuple(x) for x in sp[: len(toks)]])
                if len(embed.cache) < 200_000:
                    embed.cache.setdefault(t, np.asarray(o["sentence_embedding"], dtype=np.float32))
        return [self.cache[t] for t in texts]


token_embed = _TokenEmbeddings()


def _target_similarity(orig, sub, start: int, end_orig: int, end_sub: int) -> float:
    """Cosine of the target word's contextual vector (mean over its word pieces) in the original text
    and in the substituted one: substitute validation as in BERT-based lexical substitution (Zhou et
    al. 2019), with the encoder's last layer."""
    (a, sa), (b, sb) = orig, sub
    ia = [k for k, (s, e) in enumerate(sa) if e > s and s < end_orig and e > start]
    ib = [k for k, (s, e) in enumerate(sb) if e > s and s < end_sub and e > start]
    if not ia or not ib:
        return 0.0
    va, vb = a[ia].mean(0), b[ib].mean(0)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb) + 1e-9))


def shares_stem(candidate: str, lemma: str) -> bool:
    """Whether ``candidate`` contains the word's stem (its lemma less two letters, at least four) or is
    part of the lemma: "tight" -> "skin-tight", "tight-fitting"; annotators seldom write those."""
    cand, lemma = candidate.lower(), lemma.lower()
    return lemma[: max(4, len(lemma) - 2)] in cand or cand in lemma


# ---------------------------------------------------------------- inflection


def penn_tag(word: str, lemma: str, pos: str) -> str | None:
    """The Penn tag of ``word`` as a form of ``lemma`` (e.g. NNS, VBD, JJR); None if not found."""
    from lemminflect import getAllInflections

    low = word.lower()
    if low == lemma.lower():
        return {"n": "NN", "v": "VB", "a": "JJ", "r": "RB"}[pos]
    for tag_, forms in getAllInflections(lemma, upos=WN_TO_UPOS[pos]).items():
        if low in forms:
            return tag_
    return None


def inflect(substitute: str, tag_: str | None, pos: str) -> str | None:
    """``substitute`` (a lemma) in the form ``tag_``; None if there is no such form.

    A multi-word lemma inflects its head: the last word of a noun ("motor cars"), the first of a
    verb ("picked up"); multi-word adjectives and adverbs have no graded forms."""
    if tag_ in (None, "NN", "VB", "JJ", "RB", "VBP"):
        return substitute
    if " " in substitute:
        words = substitute.split(" ")
        head = len(words) - 1 if pos == "n" else 0
        if pos not in ("n", "v"):
            return None
        form = inflect(words[head], tag_, pos)
        return None if form is None else " ".join(words[:head] + [form] + words[head + 1 :])
    from lemminflect import getAllInflections, getInflection

    known = getAllInflections(substitute, upos=WN_TO_UPOS[pos]).get(tag_)
    if known:
        return known[0]
    if tag_ in ("JJR", "JJS", "RBR", "RBS"):
        return None  # no "crimsoner": comparatives only from words the lexicon grades
    forms = getInflection(substitute, tag=tag_)
    return forms[0] if forms else None


# ---------------------------------------------------------------- candidates and their scores


def _gloss(synset) -> str:
    names = ", ".join(l.name().replace("_", " ") for l in synset.lemmas()[:4])
    return f"{names}: {synset.definition()}"


CATEGORY_SATELLITES = 60


def _category(head) -> bool:
    """An adjective head with very many satellites names a category, not a scale: "chromatic"
    (146, every colour) gives red neither a synonym nor the antonym "achromatic"/"grey"; "large"
    (48) still gives "tiny" its antonyms through "small"."""
    return len(similar_tos(head)) > CATEGORY_SATELLITES


def frequent_satellites(head, limit: int = 8) -> list:
    """The ``limit`` similar-to satellites of an adjective head whose lemmas WordNet's tagged corpus
    uses most (a head's own synonyms: "large" -> huge, vast, great; the names' order breaks ties).

    A head offers the two most used lemmas of each. The first 8 satellites by name were taken
    before (large -> ample, astronomic, bear-sized ...): LS07 test was unchanged (P@1 0.335 both),
    but the bundled world's rare synonyms vast and great only come this way.
    """
    sats = similar_tos(head)
    return sorted(sats, key=lambda s: -max(l.count() for l in s.lemmas()))[:limit]


@lru_cache(maxsize=20_000)
def _sense_inventory(lemma: str, pos: str, relation: str, wide: bool = False):
    """[(synset, [(candidate lemma, relation weight, frequency)])] for the lemma's senses."""
    from .wordnet import load_wordnet

    wn = load_wordnet()
    senses = []
    for rank, synset in enumerate(wn.synsets(lemma, pos=pos)):
        if not any(l.name().lower() == lemma for l in synset.lemmas()):
            continue
        cands: list[tuple[str, float, int]] = []
        if relation == "synonym":
            for l in synset.lemmas():
                cands.append((l.name(), 1.0, l.count()))
            if synset.pos() == "s":
                for head in similar_tos(synset):
                    if not _category(head):
                        cands.extend((l.name(), 0.0, l.count()) for l in head.lemmas())
            elif synset.pos() == "a":
                for sat in similar_tos(synset) if wide else frequent_satellites(synset):
                    lemmas = sat.lemmas() if wide else sorted(sat.lemmas(), key=lambda l: -l.count())[:2]
                    cands.extend((l.name(), 0.0, l.count()) for l in lemmas)
        else:
            heads = [synset] + ([h for h in similar_tos(synset) if not _category(h)] if synset.pos() == "s" else [])
            for s in heads:
                for l in s.lemmas():
                    for a in l.antonyms():
                        cands.append((a.name(), 1.0, a.count() + 1))
                        cands.extend((x.name(), 0.0, x.count()) for x in a.synset().lemmas() if x != a)
                        if a.synset().pos() == "a":
                            for sat in similar_tos(a.synset()):
                                cands.extend((x.name(), -1.0, x.count()) for x in sat.lemmas()[:1] if x.count() > 0)
        senses.append((synset, rank, cands))
    return senses


def rank_substitutes(
    text: str,
    start: int,
    end: int,
    relation: str = "synonym",
    pos: str | None = None,
    lemma: str | None = None,
    tokens: list[str] | None = None,
    index: int | None = None,
    weights: tuple[float, ...] | None = None,
    threshold: float | None = None,
    max_candidates: int | None = 8,
    single_words: bool = True,
    features: list | None = None,
    wide: bool = False,
    extra: list[str] | None = None,
    dropped: list | None = None,
    only_multiword: bool = False,
) -> list[Scored]:
    """Substitutes for ``text[start:end]`` ranked by their in-context score, best first.

    ``pos``/``lemma`` default to the tagger's and lemminflect's reading of the sentence
    (``tokens``/``index``: the sentence's words and the target's place, else split from ``text``).
    ``threshold`` cuts low scores and ``max_candidates`` caps what remains (after all filters).
    ``features``, when a list, receives each candidate's (lemma, feature vector) for tuning.
    ``wide`` takes every lemma of an adjective head's similar-to satellites (the meaning check).
    ``extra``: score these candidates (an LLM's or a user file's, as written) instead of WordNet's;
    one WordNet does not relate to a sense of the word gets relation -1 and no counts.
    ``single_words`` leaves out multi-word lemmas ("motor car"); ``only_multiword`` keeps only them
    (lexsub.py adds their features to a cache of the single-word ones).
    ``dropped``, when a list, receives (candidate, reason) for each WordNet lemma that is left out.
    """
    word = text[start:end]
    if not is_content_word(word):
        return []
    if pos is None or lemma is None:
        if tokens is None:
            from .words import split_words

            ws = split_words(text)
            tokens = [w.text for w in ws]
            index = next((i for i, w in enumerate(ws) if w.start == start), None)
            if index is None:
                return []
        opts = _pos_options(word)
        if not opts:
            return []
        if pos is None:
            pos = tag(tokens)[index] or _by_frequency(opts)
            if pos not in opts:
                pos = _by_frequency(opts)
        lemma = lemma or opts.get(pos)
        if lemma is None:
            return []
    lemma = lemma.lower()
    senses = _sense_inventory(lemma, pos, relation, wide)
    if not senses:
        return []
    w = np.asarray(weights if weights is not None else WEIGHTS, dtype=np.float64)
    cut = (SYNONYM_THRESHOLD if relation == "synonym" else ANTONYM_THRESHOLD) if threshold is None else threshold
    form = penn_tag(word, lemma, pos) if relation == "synonym" else None

    # per candidate: the sense (by gloss fit to the sentence) that offers it
    sent_vec = embed([text])[0]
    gloss_vecs = embed([_gloss(s) for s, _, _ in senses])
    sense_scores = gloss_vecs @ sent_vec
    order = np.argsort(-sense_scores)
    sense_place = {int(i): p for p, i in enumerate(order)}
    top_sense = float(sense_scores.max())
    best: dict[str, tuple] = {}  # cand lemma -> (sense, place, count, wordnet rank, rel)
    graded = _graded(tuple(sorted({n.lower() for _, _, cs in senses for n, _, _ in cs})))
    why: dict[str, str] = {}  # cand lemma -> why it is left out (reported unless another sense keeps it)
    for k, ((synset, rank, cands), sense) in enumerate(zip(senses, sense_scores)):
        sense_count = sum(l.count() for l in synset.lemmas())  # how often WordNet's corpus uses this sense
        for name, rel, count in cands:
            cand = name.replace("_", " ")
            if cand.lower() == lemma or (only_multiword and " " not in cand):
                continue
            if single_words and " " in cand:
                why.setdefault(cand, "a multi-word lemma (single words asked for)")
                continue
            if not cand.isascii():
                why.setdefault(cand, "not ASCII")
                continue
            if relation == "antonym" and sense_place[k] >= ANTONYM_SENSES and rank >= ANTONYM_RANKS:
                why.setdefault(cand, "an antonym of a sense not in use")
                continue  # antonyms of the senses in use only (by gloss fit, or WordNet's first)
            if cand.lower() in graded:
                why.setdefault(cand, "a comparative or superlative")
                continue
            key = (float(sense), sense_place[k], count, rank, rel, sense_count)
            old = best.get(cand)
            if old is None or (key[0], key[4], key[2]) > (old[0], old[4], old[2]):
                best[cand] = key
    if relation == "synonym" and not wide and extra is None:
        # only the senses that fit (first SENSE_PLACES by gloss) or WordNet's first two: halves the
        # encoder's work; on LS07 trial P@1 0.330 -> 0.323, precision 0.207 -> 0.212
        for c, k in best.items():
            if not keep_sense(k[1], k[3]):
                why[c] = "its sense is not in use (gloss fit and WordNet rank)"
        best = {c: k for c, k in best.items() if keep_sense(k[1], k[3])}
    if extra is not None:
        from lemminflect import getAllLemmas

        top = int(order[0])
        default = (top_sense, 0, 0, senses[top][1], -1.0, sum(l.count() for l in senses[top][0].lemmas()))
        chosen: dict[str, tuple] = {}
        for text_ in dict.fromkeys(x.strip() for x in extra if x.strip()):
            lemmas = [text_] + [x for forms in getAllLemmas(text_.lower()).values() for x in forms]
            chosen[text_] = next((best[x] for x in lemmas if x in best), default)
        best = chosen
    surface: dict[str, str] = {}
    for cand in best:
        if extra is not None:
            if cand.lower() != word.lower():
                surface[cand] = cand
            continue
        form_ = inflect(cand, form, pos) if relation == "synonym" else cand
        if form_ is not None and form_.lower() != word.lower():
            surface[cand] = match_case(word, form_) if relation == "synonym" else form_.lower()
        elif form_ is None:
            why[cand] = f"no {form} form"
    if dropped is not None and extra is None:
        dropped.extend((c, r) for c, r in why.items() if c not in surface)
    if not surface:
        return []
    names = list(surface)
    # fit: the window of +-WINDOW words around the word, with and without the substitution
    # (a whole long sentence barely moves when one word changes, and costs more to encode)
    left, right = text[:start].split()[-WINDOW:], text[end:].split()[:WINDOW]
    window = " ".join(left + [word] + right)
    wins = [" ".join(left + [surface[c]] + right) for c in names]
    at = len(" ".join(left)) + (1 if left else 0)  # where the word starts in the window
    tok_vecs = token_embed([window] + wins)
    win_vec = embed([window])[0]
    fits = embed(wins) @ win_vec
    word_cos = embed([surface[c] for c in names]) @ embed([word])[0]
    out: list[Scored] = []
    for k, (cand, fit, wc) in enumerate(zip(names, fits, word_cos)):
        sense, place, count, rank, rel, sense_count = best[cand]
        tgt = _target_similarity(tok_vecs[0], tok_vecs[k + 1], at, at + len(word), at + len(surface[cand]))
        f = np.array([
            1.0, float(fit), float(wc), sense, sense - top_sense, 1.0 / (1 + place),
            math.log1p(count), math.log1p(rank), rel, math.log1p(_lemma_count(cand)),
            tgt, math.log1p(sense_count), float(shares_stem(cand, lemma)),
        ])
        score = float(f @ w)
        if features is not None:
            features.append((cand, f))
        cut_here = max(cut, MULTIWORD_THRESHOLD) if threshold is None and " " in cand else cut
        if score >= cut_here:
            out.append(Scored(surface[cand], round(score, 4), cand, round(float(fit), 4)))
        elif dropped is not None:
            dropped.append((surface[cand], f"in-context score {score:.2f} under the cut {cut_here:g}"))
    out.sort(key=lambda s: -s.score)
    if dropped is not None and max_candidates:
        dropped.extend((s.text, f"over the cap of {max_candidates}") for s in out[max_candidates:])
    return out[:max_candidates] if max_candidates else out
