"""The negative-prompt library: words that people put in negative prompts to lift quality.

Written for dpo-diff (not copied from any prompt site): common English words, each one token
of the CLIP BPE (tested), for the failure modes diffusion users negate. The library is split round-robin into
``n_slots`` slots; each slot picks one word or nothing.
"""

from __future__ import annotations

NEGATIVE_PROMPT_LIBRARY: tuple[str, ...] = (
    "blurry", "blurred", "fuzzy", "hazy", "noisy", "grain", "pixel", "compressed", "glitch", "distortion",
    "ugly", "bad", "worst", "poor", "amateur", "cropped", "signature", "text", "logo", "caption",
    "stamp", "artifacts", "exposure", "saturated", "dark", "washed", "faded", "dull", "flat", "muddy",
    "cartoon", "sketch", "draft", "copy", "mutant", "extra", "missing", "broken", "twisted", "messy",
)


def nplib_slots(n_slots: int = 4, words: tuple[str, ...] = NEGATIVE_PROMPT_LIBRARY) -> list[tuple[str, list[str]]]:
    """(label, candidates) for each library slot, candidates without the empty choice."""
    n_slots = max(1, min(n_slots, len(words)))
    return [(f"nplib-{i}", list(words[i::n_slots])) for i in range(n_slots)]
