"""The relaxed word in a second vocabulary: T5's SentencePiece pieces beside CLIP's BPE tokens.

SD3 and FLUX read the same prompt with CLIP and T5. The search spaces hold words that are one
CLIP token each (what :func:`dpo_diff.relaxation.tokenize_space` lays out); in T5 a word may be
one piece or several (``crimson`` -> ``▁cri`` ``mson`` in a small vocabulary, or rare words in
T5's 32k one). A mixture of embeddings can only stand for a word at one position, so:

- The T5 text is always the text of the choice the relaxed sample stands for: present slots
  take their largest-weight word, absent ones nothing (the same sampled layout the CLIP side
  uses, see :mod:`dpo_diff.relaxation`). Its T5 encoding is therefore *exact* for every
  one-hot choice, whatever the pieces.
- A slot is **mixed in T5** when, in that text, each of its words is one piece at the same
  position (swapping the word changes exactly that one id, nothing else): T5 then mixes its
  own embeddings of the slot's words there with the slot's weights, and the gradient reaches
  the slot's logits through T5 as through CLIP.
- Otherwise the slot's word is written in T5 as the sampled word's pieces, not mixed: its
  gradient comes through the CLIP encoders only (and its presence gradient through all),
  and the discrete solvers search it as any other. :func:`t5_coverage` reports which slots
  are which and why.

Checked by brute force per text (one tokenization per candidate, cached), so it holds for
any tokenizer, the real T5 one included, and for words whose pieces depend on their context.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..pipelines.conditioning import TokenMixture


def sampled_choice(tspace, words: Tensor, present: tuple[bool, ...]) -> tuple[int, ...]:
    """The discrete choice a relaxed sample stands for: largest-weight word where present, else empty."""
    best = words.detach().masked_fill(~(tspace.mask & ~tspace.empty), float("-inf")).argmax(dim=-1).tolist()
    first_empty = tspace.empty.int().argmax(dim=-1).tolist()
    return tuple(int(b) if on else int(e) for b, on, e in zip(best, present, first_empty))


def _side_text(tspace, choice: tuple[int, ...], negative: bool) -> str:
    return tspace.space.render(choice)[1 if negative else 0]


def _plan(model, tspace, choice: tuple[int, ...], negative: bool):
    """(T5 ids of the text, {slot: (position, candidate ids)} for mixed slots, {slot: why not})."""
    key = ("t5", negative, choice)
    if key in tspace._cache:
        return tspace._cache[key]
    space = tspace.space
    base = model.t5_piece_ids(_side_text(tspace, choice, negative))
    limit = model.t5_max_length
    side = space.negative_slots() if negative else space.positive_slots()
    mixed: dict[int, tuple[int, list[int]]] = {}
    why: dict[int, str] = {}
    for j in side:
        slot = space.slots[j]
        if not slot.candidates[choice[j]].strip():
            continue  # absent: takes no piece
        position = None
        ids = [0] * tspace.mask.shape[1]
        reason = ""
        for c, word in enumerate(slot.candidates):
            if not word.strip() or c == choice[j] or not bool(tspace.mask[j, c]):
                continue  # empty, the chosen word itself, or not relaxed (several CLIP tokens, or a held slot)
            alt = list(choice)
            alt[j] = c
            other = model.t5_piece_ids(_side_text(tspace, tuple(alt), negative))
            diff = [i for i, (a, b) in enumerate(zip(base, other)) if a != b] if len(other) == len(base) else None
            if diff is None or len(diff) != 1 or (position is not None and diff[0] != position):
                reason = f"'{slot.candidates[choice[j]]}' / '{word}' are not one T5 piece each at one position"
                break
            position = diff[0]
            ids[c] = other[position]
        if reason:
            why[j] = reason
            continue
        if position is None:
            continue  # one word only: nothing to mix, the text is exact
        if position >= limit - 1:
            why[j] = "past T5's sequence length"
            continue
        ids[choice[j]] = base[position]
        for c, word in enumerate(slot.candidates):  # empty, unrelaxed or missing candidates: weight 0, any valid id
            if not word.strip() or not bool(tspace.mask[j, c]):
                ids[c] = base[position]
        for c in range(len(slot.candidates), len(ids)):
            ids[c] = base[position]
        mixed[j] = (position, ids)
    tspace._cache[key] = (base, mixed, why)
    return base, mixed, why


def t5_layout(model, tspace, words: Tensor, present: tuple[bool, ...], negative: bool):
    """(T5 ids (1, t5_max_length), the T5 mixture) of a relaxed prompt at its sampled layout."""
    choice = sampled_choice(tspace, words, present)
    base, mixed, _ = _plan(model, tspace, choice, negative)
    ids = base[: model.t5_max_length - 1] + [model.t5_tokenizer.eos_token_id] if len(base) > model.t5_max_length else base
    pad = model.t5_tokenizer.pad_token_id
    ids = ids + [pad] * (model.t5_max_length - len(ids))
    slots = sorted(mixed)
    dev = model.device
    if not slots:
        return torch.tensor([ids], device=dev), None
    mixture = TokenMixture(
        torch.tensor([mixed[j][0] for j in slots], dtype=torch.long, device=dev),
        torch.tensor([mixed[j][1] for j in slots], dtype=torch.long, device=dev),
        words[slots],
    )
    return torch.tensor([ids], device=dev), mixture


def t5_coverage(model, tspace) -> dict[str, str]:
    """For the initial choice with every slot saying something: each slot's T5 treatment ("mixed" or why not)."""
    out: dict[str, str] = {}
    space = tspace.space
    choice = tuple(
        0 if space.slots[j].candidates[0].strip() else int((~tspace.empty[j] & tspace.mask[j]).int().argmax())
        for j in range(len(space.slots))
    )
    for negative in (False, True):
        _, mixed, why = _plan(model, tspace, choice, negative)
        side = space.negative_slots() if negative else space.positive_slots()
        for j in side:
            out[space.slots[j].label] = "mixed" if j in mixed else why.get(j, "one word: exact as text")
    return out
