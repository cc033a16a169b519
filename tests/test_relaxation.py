import torch

from dpo_diff.relaxation import RelaxedChoice, encode_relaxed, one_hot, representable, tokenize_space
from dpo_diff.spaces import build_space

from .conftest import PROMPT


def _space(model, kind):
    return build_space(PROMPT, kind, token_ids=model.word_token_ids)


def last_relaxed(tspace) -> tuple[int, ...]:
    """Each slot's last candidate the relaxation mixes (a held slot: its held one)."""
    return tuple(int(row.nonzero().max()) for row in tspace.mask)


def relaxed_choice(tspace, rng) -> tuple[int, ...]:
    """A random choice over what the relaxation mixes (held slots at their held candidate)."""
    return tuple(rng.choice(row.nonzero().flatten().tolist()) for row in tspace.mask)


def test_one_hot_mixture_reproduces_the_real_prompt_exactly(model):
    space = _space(model, "synonym")
    assert len(space.slots) >= 2
    tspace = tokenize_space(space, model)
    k = tspace.mask.shape[1]
    for choice in (space.initial_choice, last_relaxed(tspace)):
        cond, _ = encode_relaxed(model, tspace, one_hot(space, choice, k))
        real = model.encode([space.render(choice)[0]])
        assert torch.equal(cond.embeds, real.embeds)
    # a relaxed mixture is something else
    cond, _ = encode_relaxed(model, tspace, torch.softmax(torch.randn(len(space.slots), k), -1) * tspace.mask)
    assert not torch.allclose(cond.embeds, real.embeds)


# >= 100 choices in every kind; "cute" -> "unattractive" (2 tokens) gives a held antonym slot
EXACT_PROMPT = "a cute big dog and a little cat on a wet cold dark day or a hot night"
KINDS = ("synonym", "antonym", "nplib", "antonym+nplib", "synonym+antonym+nplib")


def check_exact_for_random_choices(model, prompt: str, n: int = 100, seed: int = 0) -> dict[str, int]:
    """For ``n`` random choices of each space kind (empty slots included), the relaxed one-hot
    conditioning equals the encoding of the rendered text, bit for bit. Multi-token candidates
    stay in the spaces: half the choices are over what the relaxation mixes with every slot held
    at candidate 0, the other half with the slots held at a random choice of the whole space
    (multi-token candidates written as text). Returns choices checked per kind."""
    import math
    import random

    checked = {}
    for kind in KINDS:
        rng = random.Random(f"{seed}-{kind}")  # each kind its own draws: one space's change moves no other's
        space = build_space(prompt, kind, token_ids=model.word_token_ids)
        assert not space.is_empty, kind
        base = tokenize_space(space, model)
        relaxable = math.prod(int(r.sum()) for r in base.mask)
        cases = {(space.initial_choice, space.initial_choice), (space.initial_choice, last_relaxed(base))}
        tries = 0
        while len(cases) < min(n, relaxable) and tries < 50 * n:
            tries += 1
            if len(cases) % 2:
                cases.add((space.initial_choice, relaxed_choice(base, rng)))
            else:
                held = tuple(rng.randrange(c) for c in space.sizes)
                cases.add((held, relaxed_choice(tokenize_space(space, model, held), rng)))
        empties = multi = 0
        held_spaces = {}
        choices = [c for _, c in cases]
        for held, choice in cases:
            if held not in held_spaces:
                held_spaces[held] = base if held == space.initial_choice else tokenize_space(space, model, held)
            tspace = held_spaces[held]
            k = tspace.mask.shape[1]
            cond, uncond = encode_relaxed(model, tspace, one_hot(space, choice, k))
            positive, negative = space.render(choice)
            real, real_neg = model.encode([positive]), model.encode([negative])
            assert torch.equal(cond.embeds, real.embeds), (kind, choice, positive)
            assert torch.equal(uncond.embeds, real_neg.embeds), (kind, choice, negative)
            if real.pooled is not None:
                assert torch.equal(cond.pooled, real.pooled) and torch.equal(uncond.pooled, real_neg.pooled)
            empties += any(space.slots[i].candidates[c] == "" for i, c in enumerate(choice))
            multi += any(not representable(model, space.slots[i].candidates[c]) for i, c in enumerate(choice))
        if "synonym" in kind:
            assert multi >= 10, (kind, multi)  # multi-token candidates (held as text) are really exercised
        if space.negative_slots():
            assert empties >= len(choices) // 4, (kind, empties)  # empty slots are really exercised
        checked[kind] = len(choices)
    return checked


def test_relaxation_is_exact_for_random_choices_empty_slots_included(model):
    checked = check_exact_for_random_choices(model, EXACT_PROMPT)
    assert all(v >= 100 for v in checked.values()), checked


def test_relaxed_empty_negative_prompt_is_the_real_empty_prompt(model):
    """The all-empty choice: "" exactly, not pad tokens with commas (the old approximation)."""
    space = _space(model, "antonym+nplib")
    tspace = tokenize_space(space, model)
    w = one_hot(space, space.initial_choice, tspace.mask.shape[1])
    _, uncond = encode_relaxed(model, tspace, w)
    assert space.render(space.initial_choice)[1] == ""
    assert torch.equal(uncond.embeds, model.encode([""]).embeds)


def test_presence_gradient_reaches_the_empty_candidates(model):
    """From the all-empty choice, the logits of "nothing" and of the words get gradient."""
    space = _space(model, "antonym")
    tspace = tokenize_space(space, model)
    logits = torch.zeros(tspace.mask.shape, requires_grad=True)
    w = torch.softmax(logits.masked_fill(~tspace.mask, float("-inf")) + 5 * tspace.empty, -1)  # mostly empty
    _, uncond = encode_relaxed(model, tspace, w)
    assert torch.equal(uncond.embeds, model.encode([""]).embeds)  # the value is the sampled choice's
    uncond.embeds.square().sum().backward()
    g = logits.grad
    assert torch.isfinite(g).all()
    assert g[tspace.empty].abs().sum() > 0 and g[tspace.mask & ~tspace.empty].abs().sum() > 0


def test_one_hot_negative_prompt_goes_through_the_encoder_exactly(model):
    space = build_space("a cute dog on a quiet street", "antonym+nplib", token_ids=model.word_token_ids)
    choice = tuple(1 for _ in space.slots)  # a word in every slot (no empty choice)
    tspace = tokenize_space(space, model, held=choice)  # multi-token words (unattractive) held as text
    assert not all(tspace.relaxed_slots) and any(tspace.relaxed_slots)
    _, uncond = encode_relaxed(model, tspace, one_hot(space, choice, tspace.mask.shape[1]))
    negative = space.render(choice)[1]
    assert negative.count(",") == len(space.slots) - 1
    assert torch.equal(uncond.embeds, model.encode([negative]).embeds)


def test_gumbel_weights_are_distributions_over_existing_candidates(model):
    space = _space(model, "antonym+nplib")
    relaxed = RelaxedChoice(tokenize_space(space, model).mask)
    g = torch.Generator().manual_seed(0)
    w = relaxed.gumbel_weights(1.0, g)
    assert torch.allclose(w.sum(-1), torch.ones(len(space.slots)))
    assert (w[~relaxed.mask] == 0).all()
    hard = relaxed.gumbel_weights(1.0, g, hard=True)
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    for _ in range(20):
        choice = relaxed.sample(g)
        assert all(0 <= c < n for c, n in zip(choice, space.sizes))


def test_long_prompt_is_truncated_with_a_warning(model):
    import pytest

    prompt = " ".join(["a red car on a quiet street"] * 20)
    space = build_space(prompt, "synonym", token_ids=model.word_token_ids)
    with pytest.warns(UserWarning, match="cut"):
        tspace = tokenize_space(space, model)
    assert tspace.pos_ids.shape == (1, 77)
    assert int(tspace.pos_positions.max()) < 76


def check_stock_pipeline(model, pipeline_encode, n: int, seed: int) -> None:
    """For ``n`` random choices, the text that is scored, given to the stock pipeline's encoding
    (``pipeline_encode(positive, negative) -> (cond, uncond, pooled, negative pooled)``), gives
    the relaxed conditioning."""
    import random

    space = _space(model, "synonym+antonym+nplib")
    rng = random.Random(seed)
    for _ in range(n):
        held = tuple(rng.randrange(k) for k in space.sizes)  # multi-token candidates held as text
        tspace = tokenize_space(space, model, held)
        choice = relaxed_choice(tspace, rng)
        cond, uncond = encode_relaxed(model, tspace, one_hot(space, choice, tspace.mask.shape[1]))
        positive, negative = space.render(choice)
        pe, npe, pooled, npooled = pipeline_encode(positive, negative)
        assert torch.equal(cond.embeds, pe) and torch.equal(uncond.embeds, npe), (positive, negative)
        if pooled is not None:
            assert torch.equal(cond.pooled, pooled) and torch.equal(uncond.pooled, npooled), negative


def test_relaxed_choices_reproduce_the_stock_pipeline_conditioning(model):
    """The text that is scored, given to diffusers' own ``encode_prompt``, gives the relaxed conditioning."""
    def encode(positive, negative):
        return (*model.pipe.encode_prompt(positive, "cpu", 1, True, negative_prompt=negative), None, None)

    check_stock_pipeline(model, encode, n=5, seed=1)


# A space whose slots mix one-token and multi-token words (CLIP BPE: lanky, carmine, "motor car" and
# "bluish green" are several tokens; the others one).
MIXED_PROMPT = "a lanky man in a red car"
MIXED = {
    "synonym": {"lanky": ["tall", "thin"], "red": ["carmine", "crimson", "scarlet"], "car": ["motor car", "bluish green"]},
    "antonym": {"red": ["bluish green", "green"], "lanky": ["carmine"]},
}


def mixed_space(model, tmp_path, kind="synonym+antonym"):
    import json

    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(MIXED))
    return build_space(MIXED_PROMPT, kind, source=str(path), token_ids=model.word_token_ids)


def test_mixed_slots_are_relaxed_or_held_and_every_choice_stays_exact(model, tmp_path):
    import itertools

    space = mixed_space(model, tmp_path)
    assert space.sizes == (3, 4, 3, 2, 3)  # synonyms, then antonyms, in prompt order
    tokens = [dict(zip(s.candidates, s.tokens)) for s in space.slots]
    assert tokens[:3] == [{"lanky": 2, "tall": 1, "thin": 1}, {"red": 1, "carmine": 2, "crimson": 1, "scarlet": 1},
                          {"car": 1, "motor car": 2, "bluish green": 3}]
    tspace = tokenize_space(space, model)
    # lanky (the word itself 2 tokens), car (no other one-token candidate), antonym lanky (only
    # "carmine") are held; red's carmine and the antonym "bluish green" get no weight
    assert tspace.relaxed_slots == (False, True, False, False, True)
    red, anti_red = space.slots[1].candidates, space.slots[4].candidates
    assert tspace.mask.tolist()[1][: len(red)] == [c != "carmine" for c in red]
    assert tspace.mask.tolist()[4][: len(anti_red)] == [c != "bluish green" for c in anti_red]
    assert [int(r.sum()) for r in tspace.mask] == [1, 3, 1, 1, 2]
    assert any("carmine: more than one token, not relaxed" in d for d in tspace.dropped_from_relaxation())
    assert any(d.startswith("lanky: held at 'lanky'") for d in tspace.dropped_from_relaxation())
    # every choice of the whole space (216), laid out with the slots held at it, is exact
    checked = 0
    for choice in itertools.product(*(range(n) for n in space.sizes)):
        ts = tokenize_space(space, model, held=choice)
        cond, uncond = encode_relaxed(model, ts, one_hot(space, choice, ts.mask.shape[1]))
        positive, negative = space.render(choice)
        assert torch.equal(cond.embeds, model.encode([positive]).embeds), positive
        assert torch.equal(uncond.embeds, model.encode([negative]).embeds), negative
        checked += 1
    assert checked == 216 == space.size


def test_gpo_gradient_reaches_only_what_the_relaxation_mixes(model, tmp_path):
    space = mixed_space(model, tmp_path)
    tspace = tokenize_space(space, model)
    relaxed = RelaxedChoice(tspace.mask, first=1.0, space_mask=tspace.space_mask)
    weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(0))
    cond, uncond = encode_relaxed(model, tspace, weights)
    (cond.embeds.square().sum() + uncond.embeds.square().sum()).backward()
    g = relaxed.logits.grad
    assert g[~tspace.mask].abs().sum() == 0  # multi-token candidates: no gradient
    assert g[[0, 2, 3]].abs().sum() == 0  # held slots: no gradient
    assert g[1].abs().sum() > 0 and g[4].abs().sum() > 0


def test_learned_distribution_covers_the_whole_space(model, tmp_path):
    space = mixed_space(model, tmp_path)
    tspace = tokenize_space(space, model)
    relaxed = RelaxedChoice(tspace.mask, first=1.0, space_mask=tspace.space_mask)
    red = space.slots[1].candidates
    with torch.no_grad():
        relaxed.logits[1] = 0.0
        relaxed.logits[1, red.index("crimson")] = 3.0  # GPO learned "crimson" for red
        relaxed.logits[1, red.index("carmine")] = 5.0  # never used: carmine is not relaxed
    logits = relaxed.space_logits()
    assert logits[1, red.index("carmine")] == 0.0  # carmine: never learned, its starting logit (the prior)
    assert logits[0].tolist() == [1.0, 0.0, 0.0, float("-inf")]  # a held slot: the prior over all its candidates
    g = torch.Generator().manual_seed(0)
    seen = {(i, c) for _ in range(600) for i, c in enumerate(relaxed.sample_space(g))}
    assert seen == {(i, j) for i, n in enumerate(space.sizes) for j in range(n)}  # every candidate reachable
    assert relaxed.argmax() == (0, red.index("crimson"), 0, 0, 0)  # the mode: what was learned, held slots at their word
    # on a space the relaxation covers whole, the space sample is the old learned sample, draw for draw
    full = RelaxedChoice(torch.ones(3, 4, dtype=torch.bool), first=1.0)
    with torch.no_grad():
        full.logits.uniform_(0, 3, generator=torch.Generator().manual_seed(1))
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert [full.sample(a) for _ in range(20)] == [full.sample_space(b) for _ in range(20)]
