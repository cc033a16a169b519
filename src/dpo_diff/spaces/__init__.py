"""Search spaces: which words can change, and into what."""

from .base import Choice, SearchSpace, Slot
from ..checks import SPACE_PARTS, parse_kind
from .builder import build_space, restrict_to_single_tokens
from .llm import LLMConfig
from .nplib import NEGATIVE_PROMPT_LIBRARY

__all__ = [
    "Choice",
    "LLMConfig",
    "NEGATIVE_PROMPT_LIBRARY",
    "SPACE_PARTS",
    "SearchSpace",
    "Slot",
    "build_space",
    "parse_kind",
    "restrict_to_single_tokens",
]
