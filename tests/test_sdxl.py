"""SDXL: both text encoders get the relaxed word, the pooled embedding and time ids reach the
UNet, and everything above the adapter (estimators, solvers, batch runner, CLI) runs unchanged."""

import pytest
import torch

import dpo_diff
from dpo_diff.errors import ModelNotFoundError
from dpo_diff.estimators import FullEstimator, ShortcutEstimator
from dpo_diff.pipelines import StableDiffusionXLModel, make_model
from dpo_diff.relaxation import encode_relaxed, one_hot, tokenize_space
from dpo_diff.spaces import build_space

from .family_checks import attack_and_batch_from_the_cli, gradients_per_encoder

PROMPT = "a big red cat on the left"


@pytest.fixture(scope="module")
def xl():
    return dpo_diff.load("tiny-sdxl", device="cpu")


def test_tiny_sdxl_is_an_sdxl_pipeline(xl):
    from diffusers import StableDiffusionXLPipeline

    assert isinstance(xl.model, StableDiffusionXLModel)
    assert isinstance(xl.model.pipe, StableDiffusionXLPipeline)
    assert xl.model.tokenizer_2.pad_token == "!"  # as in SDXL base


def test_encoding_equals_the_pipelines_own(xl):
    model = xl.model
    pe, npe, pooled, npooled = model.pipe.encode_prompt(
        PROMPT, device="cpu", do_classifier_free_guidance=True, negative_prompt="small, blurry"
    )
    cond, uncond = model.encode([PROMPT]), model.encode(["small, blurry"])
    assert cond.embeds.shape[-1] == 64  # both encoders side by side
    assert torch.equal(cond.embeds, pe) and torch.equal(cond.pooled, pooled)
    assert torch.equal(uncond.embeds, npe) and torch.equal(uncond.pooled, npooled)
    # no negative prompt: zeros, as the pipeline does with force_zeros_for_empty_prompt
    _, npe, _, npooled = model.pipe.encode_prompt(PROMPT, device="cpu", do_classifier_free_guidance=True)
    empty = model.encode([""])
    assert torch.equal(empty.embeds, npe) and torch.equal(empty.pooled, npooled)
    assert not empty.embeds.any()


@pytest.mark.parametrize("negative", ["small, blurry", ""])
def test_generated_images_equal_the_pipelines(xl, negative):
    model = xl.model
    ours = model.generate(model.encode([PROMPT]), model.encode([negative]), [3], steps=4, guidance=5.0)
    theirs = model.pipe(
        PROMPT, negative_prompt=negative or None, num_inference_steps=4, guidance_scale=5.0,
        generator=torch.Generator().manual_seed(3), output_type="pt",
    ).images
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_one_hot_mixture_reproduces_both_encoders_exactly(xl):
    model = xl.model
    space = build_space(PROMPT, "synonym+antonym+nplib", token_ids=model.word_token_ids, single_tokens=True)
    tspace = tokenize_space(space, model)
    k = tspace.mask.shape[1]
    for choice in (space.initial_choice, tuple(1 for _ in space.slots)):
        cond, uncond = encode_relaxed(model, tspace, one_hot(space, choice, k))
        positive, negative = space.render(choice)
        real, real_neg = model.encode([positive]), model.encode([negative])
        assert torch.equal(cond.embeds, real.embeds) and torch.equal(cond.pooled, real.pooled)
        # the negative too, the empty one (zeros, as the pipeline conditions without one) included
        assert torch.equal(uncond.embeds, real_neg.embeds) and torch.equal(uncond.pooled, real_neg.pooled)
    assert space.render(space.initial_choice)[1] == ""
    # the empty candidate fills its place with "!", never end-of-text (the second encoder pools there)
    assert model.filler_token_id == model.tokenizer.convert_tokens_to_ids("!")


@pytest.mark.parametrize("estimator", [ShortcutEstimator(1), FullEstimator(), FullEstimator(checkpoint=True)])
def test_gradients_reach_the_logits_through_both_encoders(xl, estimator):
    model = xl.model
    space = build_space(PROMPT, "synonym+antonym", token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    encoders = {"text_encoder": model.text_encoder, "text_encoder_2": model.text_encoder_2}
    grads = gradients_per_encoder(xl, tspace, estimator, encoders, PROMPT, guidance=7.5)  # each encoder alone
    assert not torch.allclose(grads["text_encoder"], grads["text_encoder_2"])


def test_pooled_embedding_and_time_ids_reach_the_unet(xl):
    model = xl.model
    cond = model.encode([PROMPT])
    x = torch.randn(1, 4, 16, 16)
    t = torch.tensor(500)
    with torch.no_grad():
        base = model.model_output(x, t, cond, None, 1.0)
        other = model.model_output(x, t, type(cond)(cond.embeds, torch.zeros_like(cond.pooled)), None, 1.0)
    assert not torch.allclose(base, other)
    assert model.unet_kwargs(cond)["added_cond_kwargs"]["time_ids"].tolist() == [[32, 32, 0, 0, 32, 32]]


@pytest.mark.parametrize("solver", ["random", "epo", "gpo", "hybrid"])
def test_every_solver_runs_on_sdxl(xl, solver):
    result = dpo_diff.enhance(PROMPT, model=xl, solver=solver, budget=160, seeds=1, steps=3, iterations=2)
    assert result.cost <= 160
    assert result.best.loss <= result.initial.loss
    assert result.model == "tiny-sdxl"


def test_sdxl_attack_and_batch_from_the_cli(tmp_path):
    attack_and_batch_from_the_cli(tmp_path, "tiny-sdxl", PROMPT, ["--steps", "3", "--budget", "60"],
                                  ["--steps", "2", "--budget", "40"])


def test_tokenizers_with_other_vocabularies_are_refused(xl):
    pipe = xl.model.pipe
    vocab = dict(pipe.tokenizer.get_vocab())
    vocab["cat</w>"], vocab["dog</w>"] = vocab["dog</w>"], vocab["cat</w>"]

    class SwappedTokenizer:
        def __getattr__(self, name):
            return getattr(pipe.tokenizer_2, name)

        def get_vocab(self):
            return vocab

    class OddPipeline:
        tokenizer_2 = SwappedTokenizer()

        def __getattr__(self, name):
            return getattr(pipe, name)

    with pytest.raises(ModelNotFoundError, match="different vocabularies"):
        StableDiffusionXLModel(OddPipeline(), "odd-sdxl")


def test_other_pipelines_are_refused_in_one_line():
    with pytest.raises(ModelNotFoundError, match="supports StableDiffusionPipeline"):
        make_model(object(), "some-video-model")


def test_relaxation_is_exact_for_random_choices_on_sdxl(xl):
    """>= 100 random choices per space kind, empty slots (zeros for an empty negative) included."""
    from .test_relaxation import EXACT_PROMPT, check_exact_for_random_choices

    checked = check_exact_for_random_choices(xl.model, EXACT_PROMPT)
    assert all(v >= 100 for v in checked.values()), checked


def test_relaxed_choices_reproduce_the_stock_sdxl_pipeline(xl):
    from .test_relaxation import check_stock_pipeline

    def encode(positive, negative):
        return xl.model.pipe.encode_prompt(
            positive, device="cpu", do_classifier_free_guidance=True, negative_prompt=negative or None
        )

    check_stock_pipeline(xl.model, encode, n=4, seed=2)
