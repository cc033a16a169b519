"""Splitting a prompt into words, and English inflection for substitutes."""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")  # letters of any script, so "café" stays one word

# Function words never get substitutes: WordNet knows "a" as vitamin A and "in" as an inch.
STOPWORDS = frozenset(
    """a an the and or but nor of on in at to for from by with without within into onto upon over under
    above below between among through during before after about against along across behind beyond near
    off out up down is are was were be been being am do does did has have had having it its this that these
    those there here he she they we you i me him her them us my your his our their which who whom whose
    what when where why how as than then so such very too also just not no yes can could will would shall
    should may might must some any each every all both few more most other another one two three""".split()
)


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int


def split_words(prompt: str) -> list[Word]:
    """Alphabetic words of ``prompt`` with their character spans."""
    return [Word(m.group(0), m.start(), m.end()) for m in _WORD.finditer(prompt)]


def is_content_word(word: str) -> bool:
    """Worth searching substitutes for: English (ASCII), not a stop word, longer than a letter."""
    return len(word) > 1 and word.isascii() and word.lower() not in STOPWORDS


def pluralize(noun: str) -> str:
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


def _double_final(verb: str) -> bool:
    return bool(re.search(r"[^aeiou][aeiou][bdgmnprt]$", verb)) and len(verb) <= 4


def past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ied"
    return verb + verb[-1] + "ed" if _double_final(verb) else verb + "ed"


def gerund(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    return verb + verb[-1] + "ing" if _double_final(verb) else verb + "ing"


def third_person(verb: str) -> str:
    return pluralize(verb)


def inflect_like(original: str, lemma: str, pos: str, substitute: str) -> str | None:
    """``substitute`` (a lemma) in the inflection ``original`` has relative to ``lemma``.

    Returns None when the inflection is not one we can reproduce, so the caller drops it.
    """
    o, l = original.lower(), lemma.lower()
    if o == l:
        return substitute
    if pos == "n":
        return pluralize(substitute) if o in (pluralize(l), l + "s") else None
    if pos == "v":
        if o == past(l) or o == l + "ed" or o == l + "d":
            return past(substitute)
        if o == gerund(l) or o == l + "ing":
            return gerund(substitute)
        if o == third_person(l):
            return third_person(substitute)
        return None
    return None


def match_case(original: str, word: str) -> str:
    if original.isupper() and len(original) > 1:
        return word.upper()
    if original[:1].isupper():
        return word[:1].upper() + word[1:]
    return word
