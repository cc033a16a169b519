import torch

from dpo_diff.relaxation import RelaxedChoice, encode_relaxed, one_hot, tokenize_space
from dpo_diff.spaces import build_space

from .conftest import PROMPT


def _space(model, kind):
    return build_space(PROMPT, kind, token_ids=model.word_token_ids)


def test_one_hot_mixture_reproduces_the_real_prompt_exactly(model):
    space = _space(model, "synonym")
    assert len(space.slots) >= 2
    tspace = tokenize_space(space, model)
    k = tspace.mask.shape[1]
    for choice in (space.initial_choice, tuple(n - 1 for n in space.sizes)):
        cond, _ = encode_relaxed(model, tspace, one_hot(space, choice, k))
        real = model.encode([space.render(choice)[0]])
        assert torch.equal(cond.embeds, real.embeds)
    # a relaxed mixture is something else
    cond, _ = encode_relaxed(model, tspace, torch.softmax(torch.randn(len(space.slots), k), -1) * tspace.mask)
    assert not torch.allclose(cond.embeds, real.embeds)


EXACT_PROMPT = "a big happy dog and a little sad cat on a wet cold day"  # >= 100 choices in every kind
KINDS = ("synonym", "antonym", "nplib", "antonym+nplib", "synonym+antonym+nplib")


def check_exact_for_random_choices(model, prompt: str, n: int = 100, seed: int = 0) -> dict[str, int]:
    """For ``n`` random choices of each space kind (empty slots included), the relaxed one-hot
    conditioning equals the encoding of the rendered text, bit for bit. Returns choices checked per kind."""
    import random

    rng = random.Random(seed)
    checked = {}
    for kind in KINDS:
        space = build_space(prompt, kind, token_ids=model.word_token_ids)
        assert not space.is_empty, kind
        tspace = tokenize_space(space, model)
        k = tspace.mask.shape[1]
        choices = {space.initial_choice, tuple(n - 1 for n in space.sizes)}
        while len(choices) < min(n, space.size):
            choices.add(tuple(rng.randrange(c) for c in space.sizes))
        empties = 0
        for choice in choices:
            cond, uncond = encode_relaxed(model, tspace, one_hot(space, choice, k))
            positive, negative = space.render(choice)
            real, real_neg = model.encode([positive]), model.encode([negative])
            assert torch.equal(cond.embeds, real.embeds), (kind, choice, positive)
            assert torch.equal(uncond.embeds, real_neg.embeds), (kind, choice, negative)
            if real.pooled is not None:
                assert torch.equal(cond.pooled, real.pooled) and torch.equal(uncond.pooled, real_neg.pooled)
            empties += any(space.slots[i].candidates[c] == "" for i, c in enumerate(choice))
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
    space = _space(model, "antonym+nplib")
    tspace = tokenize_space(space, model)
    choice = tuple(1 for _ in space.slots)  # a word in every slot (no empty choice)
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
    tspace = tokenize_space(space, model)
    rng = random.Random(seed)
    for _ in range(n):
        choice = tuple(rng.randrange(k) for k in space.sizes)
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
