"""The negative-prompt library: words that people put in negative prompts to lift quality.

Written for dpo-diff (not copied from any prompt site): common, single-token English words
for the failure modes diffusion users negate. The library is split round-robin into
``n_slots`` slots; each slot picks one word or nothing.
"""

from __future__ import annotations

NEGATIVE_PROMPT_LIBRARY: tuple[str, ...] = (
    "blurry", "lowres", "pixelated", "grainy", "noisy", "distorted", "deformed", "disfigured",
    "ugly", "bad", "worst", "cropped", "watermark", "signature", "text", "logo", "jpeg",
    "artifacts", "overexposed", "underexposed", "dark", "washed", "dull", "flat", "cartoon",
    "sketch", "duplicate", "mutated", "extra", "missing", "malformed", "poorly", "amateur",
    "unfocused", "tiling", "frame", "border", "monochrome", "oversaturated", "bland",
)


def nplib_slots(n_slots: int = 4, words: tuple[str, ...] = NEGATIVE_PROMPT_LIBRARY) -> list[tuple[str, list[str]]]:
    """(label, candidates) for each library slot, candidates without the empty choice."""
    n_slots = max(1, min(n_slots, len(words)))
    return [(f"nplib-{i}", list(words[i::n_slots])) for i in range(n_slots)]
