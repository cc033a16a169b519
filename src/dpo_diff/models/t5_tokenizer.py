"""A small T5-style SentencePiece (Unigram) tokenizer that needs no download, for the tiny presets.

Real SD3 / FLUX checkpoints ship T5's 32k-piece SentencePiece model; it is not in any wheel we
may install, and the tiny presets must build offline. So we build a Unigram model of the same
kind, deterministically, from the CLIP BPE vocabulary that ships with dpo-diff:

- pieces ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2 (T5's special ids), then
- ``▁word`` for the first :data:`WORDS` whole-word CLIP tokens (frequency order of the merges),
- every CLIP sub-word token (no ``</w>``), with and without the word-start mark ``▁``,
- every printable ASCII character, with and without ``▁`` (so any ASCII text tokenizes),

scored so that a whole word beats any split of it. The tokenizer is transformers'
``T5Tokenizer`` (``T5TokenizerFast``) itself, built from that (piece, score) list with T5's
pre-tokenizer (whitespace split + Metaspace) and ``</s>`` appended, as a Hub checkpoint's is;
only the NFKC-style precompiled normaliser is missing (irrelevant to ASCII prompts).

Because the word list stops at :data:`WORDS`, rarer words that are one CLIP token are several
T5 pieces here, as with the real T5: the two-vocabulary case the relaxation must handle.
"""

from __future__ import annotations

import gzip
import string
from functools import lru_cache
from importlib import resources

from .clip_bpe import BPE_FILE

WORDS = 20000  # whole-word pieces taken from the CLIP vocabulary


def _clip_tokens() -> list[str]:
    raw = resources.files("dpo_diff.data").joinpath(BPE_FILE).read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    return ["".join(m.split()) for m in merges]


def t5_vocab() -> list[tuple[str, float]]:
    """The (piece, log-score) list, in id order."""
    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -25.0)]
    seen = {p for p, _ in vocab}

    def add(piece: str, score: float) -> None:
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))

    words = 0
    subwords: list[str] = []
    for token in _clip_tokens():
        if token.endswith("</w>"):
            word = token[:-4]
            if words < WORDS and word.isascii() and word.isalpha():
                add("▁" + word, -8.0 - 4.0 * words / WORDS)  # -8 .. -12: any split of it scores less
                words += 1
        elif token.isascii() and token.isalpha():
            subwords.append(token)
    for token in subwords:
        add("▁" + token, -20.0)
        add(token, -20.0)
    for ch in string.ascii_letters + string.digits + string.punctuation:
        add("▁" + ch, -30.0)
        add(ch, -30.0)
    return vocab


@lru_cache(maxsize=1)
def t5_tokenizer(model_max_length: int = 512):
    """The tiny presets' T5 tokenizer (``T5TokenizerFast``), built once per process."""
    from transformers import T5TokenizerFast

    return T5TokenizerFast(vocab=t5_vocab(), extra_ids=0, model_max_length=model_max_length)
