"""Gumbel-softmax relaxation of the discrete word choice, and relaxed prompt encoding.

Each slot gets one token position in the (positive or negative) prompt. A relaxed choice
is a probability vector per slot; the slot's embedding is the mixture of its candidates'
token embeddings, written into the text encoder's input embeddings (a forward hook), so
the mixture goes through the whole text encoder.

**Exact for every choice, empty candidates included.** An empty candidate ("say nothing":
candidate 0 of a negative slot, or an empty substitute from a user file) takes no token in
the text that is scored: the negative prompt "blue" of a choice whose other slots are empty
has no commas or filler around it. So the token layout itself depends on which slots say
something. The relaxed encoding takes the layout of the *sampled* choice (each slot is
present when its largest weight is on a non-empty candidate, i.e. the Gumbel-max sample of
the relaxed distribution), mixes each present slot's non-empty candidates by their
renormalised weights, and carries the gradient of each slot's presence straight through:
``cond = E(P) + sum_j (p_j - stop_grad(p_j)) * stop_grad(E(P with j present) - E(P with j absent))``,
where p_j is the slot's non-empty weight. Its value is exactly E(P), so a one-hot choice
reproduces the encoding of its rendered text (and the pipeline's conditioning: zeros for
an empty SDXL negative prompt) bit for bit, for every choice; the presence gradient is
the change of conditioning that switching the slot on or off makes, which costs one extra
no-grad text encoding per slot that can be empty.

**What the relaxation cannot represent is held, not approximated.** A candidate of several
tokens (carmine, "motor car") has no single embedding to mix, and a prompt word of several tokens
(lanky) has no single position. A slot is *relaxed* over its representable candidates (one token,
or empty) when its held candidate (the current choice: the user's word, or "nothing") and at
least one other are representable; its multi-token candidates get no weight and no gradient. Any
other slot is *held*: its current candidate is written as plain text in the token layout, so the
encoding stays exactly the rendered text's for every one-hot choice over the relaxed candidates.
GPO learns logits for the relaxed candidates only; the distribution it hands on
(:meth:`RelaxedChoice.space_logits`) covers the whole space, giving every candidate it did not
learn its starting logit (the prior: the original word's 1 and the others' 0 in the authors'
style), so sampling, and the hybrid's evolution seeded from it, still reach every candidate.

The authors' release does not say what it does with empty candidates; our earlier version
put the pad token in their place, which scored about as far from the real empty prompt
(0.193 vs 0.180 on the world) as the gains being measured.

Modules: ``layout`` (token layouts, what is relaxed and what is held), ``choice`` (the
learnable logits), ``encode`` (the relaxed encoding), ``t5`` (the relaxed word in T5's own
vocabulary, for SD3 and FLUX).
"""

from __future__ import annotations

from .choice import RelaxedChoice, one_hot
from .encode import encode_relaxed, presence
from .layout import Layout, TokenizedSpace, representable, tokenize_space

__all__ = ["Layout", "RelaxedChoice", "TokenizedSpace", "encode_relaxed", "one_hot", "presence", "representable",
           "tokenize_space"]
