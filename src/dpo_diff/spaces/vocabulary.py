"""The words a model knows: substitutes outside them are left out of a search space.

A model trained on a closed set of captions (the bundled world; any folder with a
``vocabulary.txt``) has never seen other words, so a rewrite that uses one is no
meaning-preserving attack on it: the model cannot read the word at all. Such a folder lists its
words, one per line (``#`` starts a comment); ``dpo-diff world train`` writes the file. Open-vocabulary
models (Stable Diffusion, SDXL, SD3, FLUX) have none, and nothing is left out.

The ``--vocabulary`` option: ``auto`` (default) takes the model folder's file when there is one,
``none`` turns the restriction off, and a path names a word list of the user's own.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpaceError

VOCABULARY_FILE = "vocabulary.txt"


def read_vocabulary(path: str | Path) -> frozenset[str]:
    """The lowercase words of a word list (one or more words a line; ``#`` comments)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as e:
        raise SpaceError(f"cannot read the --vocabulary file '{path}': {e.strerror or e}") from None
    words = {w.lower() for line in text.splitlines() for w in line.split("#", 1)[0].split()}
    if not words:
        raise SpaceError(f"the --vocabulary file '{path}' lists no words")
    return frozenset(words)


def model_folder(model: str) -> Path | None:
    """The folder a model name loads from: the bundled model's, or a local folder; else None."""
    from ..models.loading import bundled_models

    bundled = bundled_models()
    if model in bundled:
        return bundled[model]
    folder = Path(model).expanduser()
    return folder if folder.is_dir() else None


def resolve_vocabulary(option: str | None, model: str | None) -> frozenset[str] | None:
    """The words substitutes may use, for ``--vocabulary`` ``option`` and the run's ``model`` name."""
    choice = (option or "auto").strip()
    if choice.lower() == "none":
        return None
    if choice.lower() == "auto":
        folder = model_folder(model) if model else None
        path = folder / VOCABULARY_FILE if folder is not None else None
        return read_vocabulary(path) if path is not None and path.is_file() else None
    return read_vocabulary(choice)


def known(text: str, vocabulary: frozenset[str]) -> bool:
    """Whether every word of ``text`` (a candidate, maybe of several words) is in ``vocabulary``."""
    import re

    words = re.findall(r"[A-Za-z0-9']+", text.lower())
    return bool(words) and all(w in vocabulary for w in words)
