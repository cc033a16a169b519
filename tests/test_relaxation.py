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
