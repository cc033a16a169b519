"""Token layouts of a search space: where each slot's candidates sit in the prompt's token ids, which
slots the relaxation can represent, and which it holds as text (see the package's doc)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..pipelines.stable_diffusion import StableDiffusionModel
from ..spaces import Choice, SearchSpace

Layout = tuple[Tensor, Tensor, Tensor]  # (1, L) ids, positions, slots


@dataclass
class TokenizedSpace:
    """A search space laid out on a model's tokenizer.

    ``pos_ids`` / ``neg_ids`` (and their positions and slots) are the layout with every slot
    present; :meth:`layout` gives the one for any set of present slots.
    """

    space: SearchSpace
    model: StableDiffusionModel
    candidate_ids: Tensor  # (S, K) candidate token ids per slot, padded
    mask: Tensor  # (S, K) True where the relaxation mixes a candidate (a held slot: its held one only)
    empty: Tensor  # (S, K) True where the candidate is the empty string (relaxed slots)
    pos_pieces: list = field(repr=False, default_factory=list)  # token ids of text, or a slot index
    neg_pieces: list = field(repr=False, default_factory=list)  # a slot index, or a held word's ids (tuple)
    _cache: dict = field(repr=False, default_factory=dict)
    space_mask: Tensor | None = None  # (S, K) True where a candidate exists
    held: tuple[int, ...] = ()  # each slot's held (current) candidate
    relaxed_slots: tuple[bool, ...] = ()  # False: the slot is held at ``held`` (not representable)

    @property
    def learns_anything(self) -> bool:
        """Some slot has two or more candidates the relaxation mixes."""
        return bool((self.mask.sum(-1) > 1).any())

    def dropped_from_relaxation(self) -> list[str]:
        """What the relaxation leaves out, with the reason (the search still reaches it)."""
        out = []
        for i, slot in enumerate(self.space.slots):
            if not self.relaxed_slots[i]:
                out.append(f"{slot.label}: held at {slot.candidates[self.held[i]]!r} (too few single-token candidates)")
                continue
            out.extend(f"{slot.label}->{c}: more than one token, not relaxed"
                       for j, c in enumerate(slot.candidates) if not bool(self.mask[i, j]))
        return out

    @property
    def has_negative(self) -> bool:
        return bool(self.space.negative_slots())

    @property
    def can_be_empty(self) -> Tensor:
        """(S,) True for slots with an empty candidate (their presence varies)."""
        return self.empty.any(dim=-1)

    def layout(self, present: tuple[bool, ...], negative: bool, warn: bool = True) -> Layout:
        """(ids, positions, slots) of the positive or negative prompt when ``present`` slots say something;
        the first call with every slot present warns (``warn``) when the text encoder cuts the prompt."""
        key = (negative, present)
        if key not in self._cache:
            pieces = self.neg_pieces if negative else self.pos_pieces
            ids: list[int] = []
            positions: list[int] = []
            slots: list[int] = []
            words = 0
            for piece in pieces:
                if isinstance(piece, int):
                    if not present[piece]:
                        continue
                    if negative and words:
                        ids.extend(self.model.word_token_ids(","))
                    positions.append(len(ids) + 1)  # +1 for the start token
                    slots.append(piece)
                    ids.append(int(self.candidate_ids[piece, 0]))  # placeholder: the mixture replaces it
                    words += 1
                elif isinstance(piece, tuple):  # a held negative word, as text
                    if words:
                        ids.extend(self.model.word_token_ids(","))
                    ids.extend(piece)
                    words += 1
                else:
                    ids.extend(piece)
            what = "the negative prompt" if negative else "the prompt"
            self._cache[key] = _pad(self.model, ids, positions, slots, what, warn=warn and all(present))
        return self._cache[key]

    @property
    def pos_ids(self) -> Tensor:
        return self.layout(self._all_present, False)[0]

    @property
    def pos_positions(self) -> Tensor:
        return self.layout(self._all_present, False)[1]

    @property
    def neg_ids(self) -> Tensor:
        return self.layout(self._all_present, True)[0]

    @property
    def _all_present(self) -> tuple[bool, ...]:
        return (True,) * len(self.space.slots)


def _pad(model: StableDiffusionModel, ids: list[int], positions: list[int], slots: list[int], what: str, warn: bool):
    limit = model.max_length - 2
    if len(ids) > limit:
        if warn:
            warnings.warn(f"{what} is {len(ids)} tokens; the text encoder reads {limit}, the rest is cut", stacklevel=4)
        ids = ids[:limit]
        kept = [(p, s) for p, s in zip(positions, slots) if p <= limit]
        positions, slots = [p for p, _ in kept], [s for _, s in kept]
    tok = model.tokenizer
    full = [tok.bos_token_id, *ids, tok.eos_token_id]
    full += [model.pad_token_id] * (model.max_length - len(full))
    dev = model.device
    return (
        torch.tensor([full], device=dev),
        torch.tensor(positions, dtype=torch.long, device=dev),
        torch.tensor(slots, dtype=torch.long, device=dev),
    )


def representable(model: StableDiffusionModel, word: str) -> bool:
    """The relaxation can mix ``word``: it is empty or exactly one token."""
    return not word.strip() or len(model.word_token_ids(word)) == 1


def tokenize_space(
    space: SearchSpace, model: StableDiffusionModel, held: Choice | None = None, warn: bool = True
) -> TokenizedSpace:
    """Lay ``space`` out on ``model``'s tokenizer.

    A prompt (or negative prompt) longer than the text encoder reads is cut, with a warning; ``warn``
    False leaves the positive prompt's to the caller (a run warns once when it begins).

    Slots are relaxed over their single-token (and empty) candidates when ``held`` (default: the
    initial choice) is one of them and another is too; other slots are held at ``held`` as text
    (see the module doc).
    """
    held = tuple(held) if held is not None else space.initial_choice
    if len(held) != len(space.slots):
        raise ValueError(f"held choice has {len(held)} entries for {len(space.slots)} slots")
    ok = [[representable(model, w) for w in slot.candidates] for slot in space.slots]
    relaxed = tuple(bool(r[h]) and sum(r) >= 2 for r, h in zip(ok, held))

    pos_pieces: list = []
    cursor, pending = 0, ""
    for i in sorted(space.positive_slots(), key=lambda i: space.slots[i].span[0]):
        start, end = space.slots[i].span
        pending += space.prompt[cursor:start]
        if relaxed[i]:
            if pending.strip():
                pos_pieces.append(model.word_token_ids(pending))
            pending = ""
            pos_pieces.append(i)
        else:
            pending += space.slots[i].candidates[held[i]]
        cursor = end
    pending += space.prompt[cursor:]
    if pending.strip():
        pos_pieces.append(model.word_token_ids(pending))
    neg_pieces: list = []
    for i in space.negative_slots():
        word = space.slots[i].candidates[held[i]]
        if relaxed[i]:
            neg_pieces.append(i)
        elif word.strip():
            neg_pieces.append(tuple(model.word_token_ids(word)))

    k = max(space.sizes, default=1)
    n = len(space.slots)
    cand = torch.zeros(n, k, dtype=torch.long)
    mask = torch.zeros(n, k, dtype=torch.bool)
    space_mask = torch.zeros(n, k, dtype=torch.bool)
    empty = torch.zeros(n, k, dtype=torch.bool)
    for i, slot in enumerate(space.slots):
        space_mask[i, : len(slot.candidates)] = True
        if not relaxed[i]:
            mask[i, held[i]] = True  # one candidate: no choice, no gradient; its text is in the layout
            continue
        first_word = None
        for j, word in enumerate(slot.candidates):
            if not ok[i][j]:
                continue  # several tokens: not mixed (the search still renders it)
            mask[i, j] = True
            if not word.strip():
                empty[i, j] = True
                continue
            cand[i, j] = model.word_token_ids(word)[0]
            first_word = cand[i, j] if first_word is None else first_word
        if first_word is None:
            raise ValueError(f"slot {slot.label!r} has no candidate that says something")
        cand[i][empty[i]] = first_word  # never read: empty candidates take no position
    dev = model.device
    tspace = TokenizedSpace(space, model, cand.to(dev), mask.to(dev), empty.to(dev), pos_pieces, neg_pieces,
                            space_mask=space_mask.to(dev), held=held, relaxed_slots=relaxed)
    full = tspace._all_present
    tspace.layout(full, False, warn)  # warn once here if the prompt is cut
    if tspace.has_negative:
        tspace.layout(full, True)
    return tspace
