"""SD3 / SD3.5: CLIP-L, CLIP-G and T5 all get the relaxed word, the pooled embeddings and the
negative prompt are the pipeline's, flow-matching sampling reproduces ``pipe(...)``, and the
estimators, solvers and CLI run unchanged on the ``tiny-sd3`` preset."""

import pytest
import torch

import dpo_diff
from dpo_diff.estimators import FullEstimator, ShortcutEstimator
from dpo_diff.objectives import ClipLoss
from dpo_diff.pipelines import make_model
from dpo_diff.pipelines.stable_diffusion_3 import StableDiffusion3Model
from dpo_diff.relaxation import RelaxedChoice, encode_relaxed, one_hot, tokenize_space
from dpo_diff.relaxation.t5 import t5_coverage
from dpo_diff.sampling import SamplingConfig
from dpo_diff.spaces import build_space

from .family_checks import attack_and_batch_from_the_cli, gradients_per_encoder

PROMPT = "a big red cat on the left"
CLIP_L, CLIP_G, CLIP_LEN = 32, 32, 77  # tiny-sd3's CLIP widths and length


@pytest.fixture(scope="module")
def sd3():
    return dpo_diff.load("tiny-sd3", device="cpu")


def _pipeline_encode(model, positive, negative):
    pe, npe, pooled, npooled = model.pipe.encode_prompt(
        positive, positive, positive, device="cpu", do_classifier_free_guidance=True, negative_prompt=negative or None
    )
    return pe, npe, pooled, npooled


def test_tiny_sd3_is_an_sd3_pipeline(sd3):
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    assert isinstance(sd3.model, StableDiffusion3Model)
    assert isinstance(sd3.model.pipe, StableDiffusion3Pipeline)
    assert isinstance(sd3.model.pipe.scheduler, FlowMatchEulerDiscreteScheduler)
    assert isinstance(make_model(sd3.model.pipe, "again"), StableDiffusion3Model)
    assert sd3.model.tokenizer_2.pad_token == "!"  # CLIP-G pads with "!", as in SD3 checkpoints
    assert sd3.model.t5_tokenizer("a cat").input_ids[-1] == 1  # T5's </s>


@pytest.mark.parametrize("negative", ["small, blurry", ""])
def test_encoding_equals_the_pipelines_own(sd3, negative):
    model = sd3.model
    pe, npe, pooled, npooled = _pipeline_encode(model, PROMPT, negative)
    cond, uncond = model.encode([PROMPT]), model.encode([negative])
    assert cond.embeds.shape == (1, CLIP_LEN + model.t5_max_length, 64)  # CLIP-L | CLIP-G | pad, then T5
    assert cond.pooled.shape == (1, CLIP_L + CLIP_G)
    assert torch.equal(cond.embeds, pe) and torch.equal(cond.pooled, pooled)
    assert torch.equal(uncond.embeds, npe) and torch.equal(uncond.pooled, npooled)
    assert uncond.embeds.abs().sum() > 0  # SD3 encodes "" (no zeros as in SDXL)


@pytest.mark.parametrize("negative", ["small, blurry", ""])
def test_generated_images_equal_the_pipelines(sd3, negative):
    model = sd3.model
    ours = model.generate(model.encode([PROMPT]), model.encode([negative]), [3], steps=4, guidance=5.0)
    theirs = model.pipe(
        PROMPT, negative_prompt=negative or None, num_inference_steps=4, guidance_scale=5.0,
        generator=torch.Generator().manual_seed(3), output_type="pt",
    ).images
    assert ours.shape == theirs.shape == (1, 3, 32, 32)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_flow_matching_x0_and_step(sd3):
    """x_t = (1 - s) x0 + s eps with v = eps - x0: x0 and eps come back exactly, and the move to
    the next level is the scheduler's own Euler step."""
    model = sd3.model
    scheduler = model.make_scheduler(4)
    t, t_next = scheduler.timesteps[1], scheduler.timesteps[2]
    s = float(t) / 1000
    x0, eps = torch.randn(1, 4, 16, 16), torch.randn(1, 4, 16, 16)
    x_t = (1 - s) * x0 + s * eps
    got_x0, got_eps = model.x0_and_eps(eps - x0, x_t, t)
    assert torch.allclose(got_x0, x0, atol=1e-5) and torch.allclose(got_eps, eps, atol=1e-5)
    scheduler._step_index = 1
    euler = scheduler.step(eps - x0, t, x_t).prev_sample
    assert torch.allclose(model.ddim_step(got_x0, got_eps, t_next), euler, atol=1e-5)
    assert model.ddim_step(got_x0, got_eps, None) is got_x0


def test_relaxed_choices_reproduce_the_stock_pipeline(sd3):
    """The text that is scored, given to the pipeline's own encode_prompt (all three encoders, pooled,
    negative as the pipeline builds it), gives the one-hot relaxed conditioning bit for bit."""
    from .test_relaxation import check_stock_pipeline

    check_stock_pipeline(sd3.model, lambda p, n: _pipeline_encode(sd3.model, p, n), n=6, seed=3)


def test_relaxation_is_exact_for_random_choices_in_every_encoder(sd3):
    """>= 100 random choices per space kind, empty slots and multi-piece T5 words included."""
    from .test_relaxation import EXACT_PROMPT, check_exact_for_random_choices

    checked = check_exact_for_random_choices(sd3.model, EXACT_PROMPT, n=100)
    assert all(v >= 100 for v in checked.values()), checked


def test_words_of_several_t5_pieces_are_exact_and_reported(sd3, user_space):
    """Two vocabularies: a slot whose words are not one T5 piece each is written in T5 as the sampled
    word's pieces (exact), not mixed; a slot whose words are is mixed in T5 too."""
    model = sd3.model
    space = build_space(PROMPT, "synonym+nplib", source=user_space, token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    coverage = t5_coverage(model, tspace)
    assert set(coverage) == {s.label for s in space.slots}
    assert coverage["big"] == coverage["cat"] == "mixed", coverage
    assert "not one T5 piece" in coverage["red"], coverage
    # a word of the split slot really is several T5 pieces and one CLIP token
    j = next(i for i, s in enumerate(space.slots) if s.label == "red")
    words = [w for w in space.slots[j].candidates if w]
    assert all(len(model.word_token_ids(w)) == 1 for w in words)
    assert any(len(model.t5_tokenizer(w, add_special_tokens=False).input_ids) > 1 for w in words)
    for c, w in enumerate(space.slots[j].candidates):  # every word of that slot, one-hot: exact
        choice = list(space.initial_choice)
        choice[j] = c
        cond, uncond = encode_relaxed(model, tspace, one_hot(space, tuple(choice), tspace.mask.shape[1]))
        positive, negative = space.render(tuple(choice))
        assert torch.equal(cond.embeds, model.encode([positive]).embeds), w
        assert torch.equal(uncond.embeds, model.encode([negative]).embeds), w


def _t5_gradient_by_slot(model, tspace, space):
    """d(sum of the T5 part of the conditioning) / d(weights), per slot."""
    weights = torch.full(tspace.mask.shape, 0.0)
    weights[:, 0] = 0.6
    weights[:, 1] = 0.4
    weights = (weights * tspace.mask).requires_grad_(True)
    cond, uncond = encode_relaxed(model, tspace, weights)
    (cond.embeds[:, CLIP_LEN:].sum() + uncond.embeds[:, CLIP_LEN:].sum()).backward()
    return weights.grad


def test_gpo_records_the_slots_t5_does_not_mix(sd3, user_space):
    result = dpo_diff.attack(PROMPT, model=sd3, solver="gpo", space="synonym", source=user_space, budget=60,
                             seeds=1, steps=2, iterations=1, eval_seeds=0, min_similarity=0)
    (entry,) = [h for h in result.to_dict()["history"] if h["phase"] == "t5"]
    assert set(entry["not_mixed"]) == {"red"} and "not one T5 piece" in entry["not_mixed"]["red"]


def test_t5_gradient_reaches_mixed_slots_only(sd3, user_space):
    model = sd3.model
    space = build_space(PROMPT, "synonym+nplib", source=user_space, token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    coverage = t5_coverage(model, tspace)
    assert "mixed" in coverage.values() and any("not one T5 piece" in how for how in coverage.values())
    grad = _t5_gradient_by_slot(model, tspace, space)
    for j, slot in enumerate(space.slots):
        words = ~tspace.empty[j] & tspace.mask[j]
        g = grad[j][words]
        if coverage[slot.label] == "mixed":
            assert g.abs().sum() > 0, slot.label
        elif slot.candidates[0]:  # a positive slot that is not mixed: the T5 text does not move with its weights
            assert g.abs().sum() == 0, slot.label


@pytest.mark.parametrize("estimator", [ShortcutEstimator(1), FullEstimator()])
def test_gradients_reach_the_logits_through_each_encoder(sd3, estimator, user_space):
    """Through the transformer, the sampler and the scorer: with the other encoders' mixtures frozen,
    each of CLIP-L, CLIP-G and T5 alone carries gradient to the logits."""
    model = sd3.model
    space = build_space(PROMPT, "synonym", source=user_space, token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    assert t5_coverage(model, tspace)["big"] == "mixed"
    encoders = {"clip-l": model.text_encoder, "clip-g": model.text_encoder_2, "t5": model.t5_encoder.encoder}
    grads = gradients_per_encoder(sd3, tspace, estimator, encoders, PROMPT, guidance=4.0)
    assert not torch.allclose(grads["clip-l"], grads["t5"]) and not torch.allclose(grads["clip-g"], grads["t5"])


def test_pooled_embedding_reaches_the_transformer(sd3):
    model = sd3.model
    cond = model.encode([PROMPT])
    x = model.initial_latents([0])
    t = model.make_scheduler(4).timesteps[1]
    with torch.no_grad():
        base = model.model_output(x, t, cond, None, 1.0)
        other = model.model_output(x, t, type(cond)(cond.embeds, torch.zeros_like(cond.pooled)), None, 1.0)
    assert not torch.allclose(base, other)


@pytest.mark.parametrize("solver", ["random", "epo", "gpo", "hybrid"])
def test_every_solver_enhances_on_sd3(sd3, solver):
    result = dpo_diff.enhance(PROMPT, model=sd3, solver=solver, budget=100, seeds=1, steps=2, iterations=2,
                              eval_seeds=0)
    assert result.cost <= 100
    assert result.best.loss <= result.initial.loss
    assert result.model == "tiny-sd3"
    phases = {h["phase"] for h in result.to_dict()["history"]}
    assert ("gradient" in phases) == (solver in ("gpo", "hybrid")), phases  # GPO's grad steps ran
    assert result.cost_breakdown["counts"]["unet"] > 0  # transformer calls were counted (on the run's own meter)


def test_sd3_attack_and_batch_from_the_cli(tmp_path):
    attack_and_batch_from_the_cli(tmp_path, "tiny-sd3", PROMPT,
                                  ["--steps", "2", "--budget", "40", "--solver", "hybrid", "--eval-seeds", "1"],
                                  ["--steps", "2", "--budget", "30"])


def test_sd35_random_is_the_published_sd35_medium_architecture():
    """Built on the meta device (no memory): parameter counts of SD3.5 medium's parts."""
    from dpo_diff.models.presets import build_preset_pipeline

    pipe = build_preset_pipeline("sd35-random", device="meta")
    count = {k: sum(p.numel() for p in getattr(pipe, k).parameters()) / 1e9
             for k in ("transformer", "text_encoder", "text_encoder_2", "text_encoder_3")}
    assert abs(count["transformer"] - 2.243) < 0.01  # MMDiT-X, 24 blocks, 13 with dual attention
    assert abs(count["text_encoder"] - 0.124) < 0.01 and abs(count["text_encoder_2"] - 0.695) < 0.01  # CLIP-L, -G
    assert abs(count["text_encoder_3"] - 4.80) < 0.05  # T5-XXL encoder


@pytest.mark.parametrize("steps,k", [(1, 1), (2, 2)])
def test_few_step_use_like_sd35_large_turbo(sd3, steps, k):
    """No guidance, a few steps: the shortcut covering every step is the full gradient, and at one step a
    one-hot choice's shortcut loss is what an evaluation of it scores (x0 = x_t - s v is the last Euler step)."""
    from dpo_diff.cost import CostMeter
    from dpo_diff.problem import Problem

    model = sd3.model
    space = build_space(PROMPT, "synonym", token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    sampling = SamplingConfig((0,), steps=steps, guidance=0.0)
    objective = ClipLoss(sd3.scorer, PROMPT)
    grads, losses = [], []
    for estimator in (ShortcutEstimator(k), FullEstimator()):
        relaxed = RelaxedChoice(tspace.mask)
        weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(1))
        loss = estimator.loss(model, sampling, objective, lambda: encode_relaxed(model, tspace, weights), 25)
        (g,) = torch.autograd.grad(loss, relaxed.logits)
        grads.append(g)
        losses.append(loss.detach())
    assert torch.allclose(losses[0], losses[1], atol=1e-6) and torch.allclose(grads[0], grads[1], atol=1e-7)
    assert grads[0].abs().sum() > 0
    if steps == 1:
        # the last candidate the relaxation represents in each slot (several-token ones are held, not mixed)
        choice = tuple(int(tspace.mask[j].nonzero().max()) for j in range(len(space.slots)))
        weights = one_hot(space, choice, tspace.mask.shape[1])
        with torch.no_grad():
            relaxed_loss = ShortcutEstimator(1).loss(model, sampling, objective,
                                                     lambda: encode_relaxed(model, tspace, weights), 25)
        model.meter = CostMeter()  # an unlimited meter (earlier runs leave theirs, spent, on the model)
        ((_, scored),) = Problem(model, space, objective, sampling).evaluate([choice])
        assert float(relaxed_loss) == pytest.approx(scored, abs=1e-5)


def test_sd3_without_t5_conditions_on_zeros_like_the_pipeline(sd3):
    """SD3 may be loaded without T5 (``text_encoder_3=None``, a memory saver): zeros in T5's place."""
    from diffusers import StableDiffusion3Pipeline

    components = {**sd3.model.pipe.components, "text_encoder_3": None, "tokenizer_3": None}
    model = make_model(StableDiffusion3Pipeline(**components), "no-t5")
    pe, npe, pooled, npooled = _pipeline_encode(model, PROMPT, "small, blurry")
    cond, uncond = model.encode([PROMPT]), model.encode(["small, blurry"])
    assert torch.equal(cond.embeds, pe) and torch.equal(uncond.embeds, npe) and torch.equal(cond.pooled, pooled)
    assert not cond.embeds[:, CLIP_LEN:].any()
    space = build_space(PROMPT, "synonym+nplib", token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    choice = tuple(int(tspace.mask[j].nonzero().max()) for j in range(len(space.slots)))  # relaxed candidates
    cond, uncond = encode_relaxed(model, tspace, one_hot(space, choice, tspace.mask.shape[1]))
    positive, negative = space.render(choice)
    assert torch.equal(cond.embeds, model.encode([positive]).embeds)
    assert torch.equal(uncond.embeds, model.encode([negative]).embeds)
