"""FLUX.1: the relaxed word goes through CLIP (pooled) and T5, the guidance embedding and packed
latents are the pipeline's, true CFG carries the negative prompt, and the estimators, solvers and
CLI run unchanged on the ``tiny-flux`` preset."""

import pytest
import torch
from typer.testing import CliRunner

import dpo_diff
from dpo_diff.cli import app
from dpo_diff.errors import DpoDiffError
from dpo_diff.estimators import FullEstimator, ShortcutEstimator
from dpo_diff.pipelines import make_model
from dpo_diff.pipelines.flux import FluxModel
from dpo_diff.relaxation import encode_relaxed, one_hot, tokenize_space
from dpo_diff.relaxation.t5 import t5_coverage
from dpo_diff.spaces import build_space

from .family_checks import attack_and_batch_from_the_cli, gradients_per_encoder

PROMPT = "a big red cat on the left"


@pytest.fixture(scope="module")
def flux():
    return dpo_diff.load("tiny-flux", device="cpu")


def _pipeline_encode(model, positive, negative):
    pe, pooled, _ = model.pipe.encode_prompt(positive, positive, device="cpu")
    npe, npooled, _ = model.pipe.encode_prompt(negative, negative, device="cpu")
    return pe, npe, pooled, npooled


def test_tiny_flux_is_a_flux_pipeline(flux):
    from diffusers import FluxPipeline

    assert isinstance(flux.model, FluxModel) and isinstance(flux.model.pipe, FluxPipeline)
    assert isinstance(make_model(flux.model.pipe, "again"), FluxModel)
    assert flux.model.guidance_embeds  # dev-style: the guidance scale is a transformer input
    assert (flux.default_steps, flux.default_guidance) == (4, 1.0)  # no true CFG unless asked


@pytest.mark.parametrize("text", [PROMPT, "small, blurry", ""])
def test_encoding_equals_the_pipelines_own(flux, text):
    model = flux.model
    pe, pooled, text_ids = model.pipe.encode_prompt(text, text, device="cpu")
    cond = model.encode([text])
    assert cond.embeds.shape == (1, 512, 64) and cond.pooled.shape == (1, 32)  # T5 states, CLIP pooled
    assert torch.equal(cond.embeds, pe) and torch.equal(cond.pooled, pooled)
    assert torch.equal(model.unet_kwargs(cond)["txt_ids"], text_ids)


@pytest.mark.parametrize("negative,true_cfg", [(None, 1.0), ("small, blurry", 3.0), ("", 2.0)])
def test_generated_images_equal_the_pipelines(flux, negative, true_cfg):
    model = flux.model
    uncond = model.encode([negative]) if negative is not None else None
    ours = model.generate(model.encode([PROMPT]), uncond, [3], steps=4, guidance=true_cfg)
    theirs = model.pipe(
        PROMPT, negative_prompt=negative, true_cfg_scale=true_cfg, num_inference_steps=4,
        generator=torch.Generator().manual_seed(3), output_type="pt",
    ).images
    assert ours.shape == theirs.shape == (1, 3, 32, 32)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_packed_latents_and_guidance_embedding(flux):
    model = flux.model
    x = model.initial_latents([5])
    pipe_x, image_ids = model.pipe.prepare_latents(1, 4, 32, 32, torch.float32, "cpu", torch.Generator().manual_seed(5))
    assert torch.equal(x, pipe_x) and torch.equal(model.image_ids, image_ids)
    assert torch.equal(model._vae_latents(x), model.pipe._unpack_latents(x, 32, 32, model.vae_scale_factor))
    cond = model.encode([PROMPT])
    t = model.make_scheduler(4).timesteps[1]
    with torch.no_grad():
        base = model.model_output(x, t, cond, None, 1.0)
        model.embedded_guidance = 7.0
        try:
            other = model.model_output(x, t, cond, None, 1.0)
        finally:
            del model.embedded_guidance
    assert not torch.allclose(base, other)
    assert model.embedded_guidance == 3.5  # FluxPipeline's default guidance_scale


def test_relaxed_choices_reproduce_the_stock_pipeline(flux):
    from .test_relaxation import check_stock_pipeline

    check_stock_pipeline(flux.model, lambda p, n: _pipeline_encode(flux.model, p, n), n=6, seed=4)


def test_relaxation_is_exact_for_random_choices_in_every_encoder(flux):
    """>= 100 random choices per space kind, empty slots and multi-piece T5 words included."""
    from .test_relaxation import EXACT_PROMPT, check_exact_for_random_choices

    checked = check_exact_for_random_choices(flux.model, EXACT_PROMPT, n=100)
    assert all(v >= 100 for v in checked.values()), checked


def test_two_vocabularies_on_flux(flux, user_space):
    """A slot with a word of several T5 pieces is not mixed in T5, and its one-hot choices stay exact."""
    model = flux.model
    space = build_space(PROMPT, "synonym", source=user_space, token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    coverage = t5_coverage(model, tspace)
    assert coverage["big"] == coverage["cat"] == "mixed" and "not one T5 piece" in coverage["red"], coverage
    j = next(i for i, s in enumerate(space.slots) if s.label == "red")
    for c in range(len(space.slots[j].candidates)):
        choice = list(space.initial_choice)
        choice[j] = c
        cond, _ = encode_relaxed(model, tspace, one_hot(space, tuple(choice), tspace.mask.shape[1]))
        real = model.encode([space.render(tuple(choice))[0]])
        assert torch.equal(cond.embeds, real.embeds) and torch.equal(cond.pooled, real.pooled)


@pytest.mark.parametrize("estimator", [ShortcutEstimator(1), FullEstimator(checkpoint=True)])
def test_gradients_reach_the_logits_through_each_encoder(flux, estimator, user_space):
    model = flux.model
    space = build_space(PROMPT, "synonym", source=user_space, token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    assert t5_coverage(model, tspace)["big"] == "mixed"
    encoders = {"clip-pooled": model.text_encoder, "t5": model.t5_encoder.encoder}
    grads = gradients_per_encoder(flux, tspace, estimator, encoders, PROMPT, guidance=1.0)
    assert not torch.allclose(grads["clip-pooled"], grads["t5"])


def test_negative_spaces_need_true_cfg(flux):
    with pytest.raises(DpoDiffError, match="use --true-cfg above 1"):
        dpo_diff.enhance(PROMPT, model=flux, budget=50, seeds=1)
    with pytest.raises(DpoDiffError, match="both set"):
        dpo_diff.enhance(PROMPT, model=flux, budget=50, seeds=1, guidance=2.0, true_cfg=3.0)
    res = CliRunner().invoke(app, ["enhance", PROMPT, "--model", "tiny-flux", "--budget", "50"])
    assert res.exit_code == 2 and "--true-cfg" in res.output
    assert len([line for line in res.output.splitlines() if line.strip()]) <= 3, res.output  # one message


@pytest.mark.parametrize("solver", ["random", "epo", "gpo", "hybrid"])
def test_every_solver_enhances_on_flux_with_true_cfg(flux, solver):
    result = dpo_diff.enhance(PROMPT, model=flux, solver=solver, budget=100, seeds=1, steps=2, iterations=2,
                              eval_seeds=0, true_cfg=3.0)
    assert result.cost <= 100 and result.guidance == 3.0
    assert result.best.loss <= result.initial.loss
    phases = {h["phase"] for h in result.to_dict()["history"]}
    assert ("gradient" in phases) == (solver in ("gpo", "hybrid")), phases
    assert result.model == "tiny-flux"


def test_flux_attack_and_batch_from_the_cli(tmp_path):
    config = attack_and_batch_from_the_cli(
        tmp_path, "tiny-flux", PROMPT,
        ["--steps", "2", "--budget", "40", "--solver", "gpo", "--iterations", "2", "--eval-seeds", "1"],
        ["--true-cfg", "2", "--steps", "2", "--budget", "30"],  # the default enhance space: negative prompts, through true CFG
    )
    assert config["guidance"] == 2.0


def test_flux_random_is_the_published_flux_schnell_architecture():
    """Built on the meta device (no memory): parameter counts of FLUX.1-schnell's parts."""
    from dpo_diff.models.presets import build_preset_pipeline

    pipe = build_preset_pipeline("flux-random", device="meta")
    count = {k: sum(p.numel() for p in getattr(pipe, k).parameters()) / 1e9
             for k in ("transformer", "text_encoder", "text_encoder_2")}
    assert abs(count["transformer"] - 11.89) < 0.01  # 19 double + 38 single blocks
    assert abs(count["text_encoder"] - 0.123) < 0.01 and abs(count["text_encoder_2"] - 4.80) < 0.05
    assert not pipe.transformer.config.guidance_embeds  # schnell
