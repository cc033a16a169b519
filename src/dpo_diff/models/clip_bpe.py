"""The real CLIP byte-pair-encoding tokenizer, built offline from the vocabulary we ship.

Stable Diffusion 1.x/2.x and CLIP all use the same 49 408-token BPE vocabulary. We ship
OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` (MIT) inside the package and turn it into the
``vocab.json`` / ``merges.txt`` pair that :class:`transformers.CLIPTokenizer` reads, so the
``tiny`` preset tokenizes exactly like a Hub checkpoint without any download.
"""

from __future__ import annotations

import gzip
import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

from transformers import CLIPTokenizer

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
VOCAB_SIZE = 49408
MAX_LENGTH = 77


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def cache_dir() -> Path:
    """Where dpo-diff keeps derived files (tokenizer, WordNet copy, LLM spaces)."""
    root = os.environ.get("DPO_DIFF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dpo-diff"
    )
    return Path(root)


def write_tokenizer_files(target: Path) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` for the CLIP BPE into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    vocab_path, merges_path = target / "vocab.json", target / "merges.txt"
    if vocab_path.exists() and merges_path.exists():
        return vocab_path, merges_path
    raw = resources.files("dpo_diff.data").joinpath(BPE_FILE).read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # 48 894 merges
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars]
    tokens += ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    assert len(tokens) == VOCAB_SIZE, len(tokens)
    tmp = target / f".vocab.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    tmp.replace(vocab_path)
    tmp = target / f".merges.{os.getpid()}.tmp"
    tmp.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tmp.replace(merges_path)
    return vocab_path, merges_path


@lru_cache(maxsize=4)
def clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """The CLIP BPE tokenizer (the one SD 1.x uses), built from the shipped vocabulary.

    ``pad_token="!"`` gives the second tokenizer of SDXL.
    """
    vocab_path, merges_path = write_tokenizer_files(cache_dir() / "clip-bpe")
    # transformers 5 ignores these paths when given as keywords: pass them positionally.
    return CLIPTokenizer(
        str(vocab_path),
        str(merges_path),
        model_max_length=MAX_LENGTH,
        pad_token=pad_token,
    )
