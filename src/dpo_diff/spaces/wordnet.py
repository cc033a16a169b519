"""Synonyms and antonyms from WordNet, through NLTK, offline.

The data is found, in order: where NLTK already finds it (``nltk.download('wordnet')``);
a WordNet 3.x database folder (``$DPO_DIFF_WORDNET_DIR``, ``$WNSEARCHDIR`` or Debian's
``/usr/share/wordnet`` from ``apt-get install wordnet-base wordnet-sense-index``), which is
copied once into dpo-diff's cache in the layout NLTK expects; finally ``nltk.download``.

Sense choice: WordNet lists each word's senses most frequent first. We take the part of
speech whose senses are most frequent in WordNet's sense-tagged corpus (ties: noun, adj,
verb, adverb), then its first ``max_senses`` senses. Adjective satellites contribute their
similar-to heads' lemmas and antonyms ("crimson" -> red's cluster; "quiet" -> "noisy").
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
from functools import lru_cache
from pathlib import Path

from ..errors import SpaceError
from ..models.clip_bpe import cache_dir
from .words import inflect_like, is_content_word, match_case

log = logging.getLogger(__name__)

_DB_FILES = (
    "adj.exc adv.exc cntlist.rev data.adj data.adv data.noun data.verb index.adj index.adv "
    "index.noun index.sense index.verb noun.exc verb.exc"
).split()

# The lexicographer file names of WordNet 3.x (the database's lexnames file, which Debian omits).
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_LEX_POS = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}

INSTALL_HINT = (
    "WordNet data not found: run `python -m nltk.downloader wordnet`, or "
    "`apt-get install wordnet-base wordnet-sense-index`, or set DPO_DIFF_WORDNET_DIR to a WordNet 3 dict folder"
)


def _database_dirs() -> list[Path]:
    dirs = [os.environ.get("DPO_DIFF_WORDNET_DIR"), os.environ.get("WNSEARCHDIR"), "/usr/share/wordnet"]
    return [Path(d) for d in dirs if d]


def _install_from_database(src: Path, nltk_root: Path) -> bool:
    if not (src / "data.noun").is_file():
        return False
    target = nltk_root / "corpora" / "wordnet"
    if not (target / "lexnames").is_file():
        tmp = target.with_name(f"wordnet.{os.getpid()}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        for name in _DB_FILES:
            if (src / name).is_file():
                shutil.copyfile(src / name, tmp / name)
        lexnames = "".join(
            f"{i:02d}\t{name}\t{_LEX_POS[name.split('.')[0]]}\n" for i, name in enumerate(_LEXNAMES)
        )
        (tmp / "lexnames").write_text(lexnames)
        if target.exists():
            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
    return True


@lru_cache(maxsize=1)
def load_wordnet():
    """NLTK's WordNet reader, from whichever source is available (see module doc)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    def reader_at(root: str):
        return WordNetCorpusReader(root, None)

    for name in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            return reader_at(str(nltk.data.find(name)))
        except LookupError:
            pass
    nltk_root = cache_dir() / "nltk_data"
    for src in _database_dirs():
        if _install_from_database(src, nltk_root):
            if str(nltk_root) not in nltk.data.path:
                nltk.data.path.append(str(nltk_root))
            return reader_at(str(nltk_root / "corpora" / "wordnet"))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ok = nltk.download("wordnet", quiet=True, raise_on_error=True)
        if ok:
            return reader_at(str(nltk.data.find("corpora/wordnet.zip/wordnet/")))
    except Exception:  # no network, proxy errors ...
        pass
    raise SpaceError(INSTALL_HINT)


def _lemma_name(lemma) -> str:
    return lemma.name().replace("_", " ")


def _frequency(wn, word: str, pos: str) -> int:
    return sum(l.count() for s in wn.synsets(word, pos=pos) for l in s.lemmas() if l.name().lower() == word)


def _senses(wn, word: str, max_senses: int):
    """(lemma, pos, synsets) for the word's dominant part of speech."""
    best = None
    for order, pos in enumerate(("n", "a", "v", "r")):
        lemma = wn.morphy(word, pos)
        if lemma is None:
            continue
        synsets = wn.synsets(lemma, pos=pos)
        if not synsets:
            continue
        key = (_frequency(wn, lemma, pos), -order)
        if best is None or key > best[0]:
            best = (key, lemma, pos, synsets)
    if best is None:
        return None
    _, lemma, pos, synsets = best
    # Later senses only when the sense-tagged corpus uses the word in them at all and at least a
    # quarter as often as in the first: keeps "cat" -> feline, not "cat" -> guy.
    counts = [sum(l.count() for l in s.lemmas() if l.name().lower() == lemma) for s in synsets]
    kept = [synsets[0]] + [s for s, c in zip(synsets[1:], counts[1:]) if c > 0 and 4 * c >= counts[0]]
    return lemma, "a" if pos in ("a", "s") else pos, kept[:max_senses]


def _similar_tos(synset) -> list:
    """Similar-to synsets in a fixed order (NLTK 3.9+ keeps them in a set: hash-seed order)."""
    return sorted(synset.similar_tos(), key=lambda s: s.name())


def _synonym_lemmas(synsets, lemma: str) -> list[str]:
    out: list[str] = []
    for synset in synsets:
        related = [synset] + (_similar_tos(synset) if synset.pos() in ("a", "s") else [])
        for s in related:
            for l in s.lemmas():
                name = _lemma_name(l)
                if name.lower() != lemma and name not in out:
                    out.append(name)
    return out


def _antonym_lemmas(synsets, lemma: str) -> list[str]:
    out: list[str] = []
    for synset in synsets:
        heads = [synset] + (_similar_tos(synset) if synset.pos() == "s" else [])
        for s in heads:
            for l in s.lemmas():
                for a in l.antonyms():
                    names = [_lemma_name(x) for x in a.synset().lemmas()] if l.name().lower() == lemma else []
                    for name in [_lemma_name(a)] + names[:2]:
                        if name.lower() != lemma and name not in out:
                            out.append(name)
    return out


def wordnet_substitutes(word: str, relation: str, max_senses: int = 2, max_candidates: int = 8) -> list[str]:
    """Synonyms or antonyms of ``word`` (inflected like it), most frequent senses first."""
    if not is_content_word(word):
        return []
    wn = load_wordnet()
    found = _senses(wn, word.lower(), max_senses)
    if found is None:
        return []
    lemma, pos, synsets = found
    lemmas = _synonym_lemmas(synsets, lemma) if relation == "synonym" else _antonym_lemmas(synsets, lemma)
    # common words first: a rare lemma is more often a wrong sense than a better word
    lemmas.sort(key=lambda name: -sum(l.count() for l in wn.lemmas(name.replace(" ", "_"))))
    out: list[str] = []
    for cand in lemmas:
        if " " in cand or not cand.isascii():
            continue
        # antonyms negate the word's meaning, inflection would only add tokens
        inflected = inflect_like(word, lemma, pos, cand) if relation == "synonym" else cand
        if inflected is None or inflected.lower() == word.lower():
            continue
        inflected = match_case(word, inflected) if relation == "synonym" else inflected.lower()
        if inflected not in out:
            out.append(inflected)
    return out[:max_candidates]
