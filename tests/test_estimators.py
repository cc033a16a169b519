"""The gradient estimators: gradients reach the logits, agree with finite differences, and
the shortcut's memory does not grow with the number of sampling steps."""

import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, PNDMScheduler

from dpo_diff.estimators import FullEstimator, ShortcutEstimator, timestep_schedule
from dpo_diff.objectives import ClipLoss
from dpo_diff.pipelines import StableDiffusionModel
from dpo_diff.relaxation import RelaxedChoice, encode_relaxed, tokenize_space
from dpo_diff.sampling import SamplingConfig
from dpo_diff.spaces import build_space

from .conftest import PROMPT


@pytest.fixture(scope="module")
def setup(engine):
    model = engine.model
    space = build_space(PROMPT, "synonym+antonym", token_ids=model.word_token_ids)
    return model, tokenize_space(space, model), ClipLoss(engine.scorer, PROMPT)


@pytest.mark.parametrize("estimator", [ShortcutEstimator(1), ShortcutEstimator(2), FullEstimator(), FullEstimator(True)])
def test_gradients_reach_the_logits(setup, estimator, fresh_meter):
    model, tspace, objective = setup
    relaxed = RelaxedChoice(tspace.mask)
    weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(0))
    sampling = SamplingConfig((0, 1), steps=6, guidance=7.5)
    loss = estimator.loss(model, sampling, objective, lambda: encode_relaxed(model, tspace, weights), t=25)
    loss.backward()
    grad = relaxed.logits.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad[tspace.mask].abs().sum() > 0
    assert (grad[~tspace.mask] == 0).all()
    assert fresh_meter.used == estimator.cost(25, sampling)  # the cost model is exact


def test_shortcut_with_k_equal_to_steps_is_the_full_gradient(setup):
    """Where they must agree (K grad steps = all steps), shortcut and full backprop give the same
    loss and gradient, empty negative slots included; where they need not (K = 1), their cosine
    is what ``benchmarks/gradient_cost.py`` reports."""
    model, tspace, objective = setup
    relaxed = RelaxedChoice(tspace.mask)
    sampling = SamplingConfig((0, 1), steps=4, guidance=7.5)
    grads, losses = [], []
    for estimator in (ShortcutEstimator(k=4), FullEstimator()):
        weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(3))
        loss = estimator.loss(model, sampling, objective, lambda: encode_relaxed(model, tspace, weights), t=50)
        (g,) = torch.autograd.grad(loss, relaxed.logits)
        grads.append(g)
        losses.append(float(loss.detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)
    assert grads[0].abs().sum() > 0


def test_relaxed_loss_is_differentiated_exactly_by_autograd(engine):
    """An autograd check (not shortcut vs full): from t_i = 0 the shortcut loss is a plain
    function of the slot weights, and its gradient matches central finite differences.
    The synonym space has no empty candidates, whose presence gradient is straight-through."""
    model, objective = engine.model, ClipLoss(engine.scorer, PROMPT)
    tspace = tokenize_space(build_space(PROMPT, "synonym", token_ids=model.word_token_ids), model)
    estimator = ShortcutEstimator(k=2)
    sampling = SamplingConfig((0,), steps=8, guidance=7.5)
    weights0 = torch.softmax(torch.randn(tspace.mask.shape, generator=torch.Generator().manual_seed(1)), -1)
    weights0 = weights0 * tspace.mask

    def loss_at(w):
        return estimator.loss(model, sampling, objective, lambda: encode_relaxed(model, tspace, w), t=0)

    w = weights0.clone().requires_grad_(True)
    loss_at(w).backward()
    analytic = w.grad[tspace.mask]
    eps = 1e-2
    numeric = torch.zeros_like(analytic)
    coords = tspace.mask.nonzero().tolist()
    with torch.no_grad():
        for n, (i, j) in enumerate(coords):
            up, down = weights0.clone(), weights0.clone()
            up[i, j] += eps
            down[i, j] -= eps
            numeric[n] = (loss_at(up) - loss_at(down)) / (2 * eps)
    cosine = torch.nn.functional.cosine_similarity(analytic, numeric, dim=0)
    assert cosine > 0.99, (cosine, analytic, numeric)
    assert torch.allclose(analytic.norm(), numeric.norm(), rtol=0.05)


def _saved_bytes(run) -> int:
    """Bytes of tensors autograd keeps for the backward pass while ``run`` builds its graph."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run().backward()
    return total


def test_shortcut_memory_is_flat_in_steps_and_full_grows(setup):
    model, tspace, objective = setup
    relaxed = RelaxedChoice(tspace.mask)

    def run(estimator, steps):
        sampling = SamplingConfig((0,), steps=steps, guidance=7.5)
        return lambda: estimator.loss(
            model, sampling, objective, lambda: encode_relaxed(model, tspace, relaxed.probs()), t=25
        )

    short = [_saved_bytes(run(ShortcutEstimator(1), s)) for s in (4, 16)]
    full = [_saved_bytes(run(FullEstimator(), s)) for s in (4, 16)]
    ckpt = [_saved_bytes(run(FullEstimator(checkpoint=True), s)) for s in (4, 16)]
    assert short[0] == short[1]
    assert full[1] > 3 * full[0]
    assert ckpt[1] < full[1] / 3 and short[1] < full[1] / 8


@pytest.mark.parametrize(
    "scheduler_cls, extra",
    [
        (DDIMScheduler, {}),
        (PNDMScheduler, {"skip_prk_steps": True}),
        (EulerDiscreteScheduler, {}),
        (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    ],
)
def test_own_sampling_matches_the_diffusers_pipeline_for_each_scheduler(engine, scheduler_cls, extra):
    pipe = engine.model.pipe
    original = pipe.scheduler
    pipe.scheduler = scheduler_cls.from_config(original.config, **extra)
    try:
        model = StableDiffusionModel(pipe, "tiny")
        cond, uncond = model.encode([PROMPT]), model.encode(["blurry"])
        ours = model.generate(cond, uncond, [3], steps=5, guidance=7.5)
        scheduler = model.make_scheduler(5)
        latents = model.initial_latents([3])
        theirs = pipe(
            prompt_embeds=cond.embeds, negative_prompt_embeds=uncond.embeds, latents=latents,
            num_inference_steps=5, guidance_scale=7.5, output_type="pt",
        ).images
        assert torch.allclose(ours, theirs, atol=1e-4)
        # and the shortcut estimator runs on top of it
        sampling = SamplingConfig((3,), steps=5, guidance=7.5)
        space = build_space(PROMPT, "synonym", token_ids=model.word_token_ids)
        tspace = tokenize_space(space, model)
        relaxed = RelaxedChoice(tspace.mask)
        objective = ClipLoss(engine.scorer, PROMPT)
        loss = ShortcutEstimator().loss(model, sampling, objective, lambda: encode_relaxed(model, tspace, relaxed.probs()), 30)
        loss.backward()
        assert torch.isfinite(relaxed.logits.grad).all() and relaxed.logits.grad.abs().sum() > 0
        del scheduler
    finally:
        pipe.scheduler = original


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_closed_form_x0_inverts_each_parameterisation(engine, prediction_type):
    model = StableDiffusionModel(engine.model.pipe, "tiny")
    model.prediction_type = prediction_type
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    t = 500
    a = model.alpha_bar(t)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    out = {"epsilon": eps, "v_prediction": a.sqrt() * eps - (1 - a).sqrt() * x0, "sample": x0}[prediction_type]
    x0_hat, eps_hat = model.x0_and_eps(out, x_t, t)
    assert torch.allclose(x0_hat, x0, atol=1e-4) and torch.allclose(eps_hat, eps, atol=1e-4)


def test_timestep_schedules():
    import random

    from dpo_diff.errors import DpoDiffError

    assert timestep_schedule("step-15-2", 20, random.Random(0)) == [15 + i // 2 for i in range(20)]
    assert timestep_schedule("fix-30", 3, random.Random(0)) == [30, 30, 30]
    assert all(10 <= t < 20 for t in timestep_schedule("rand-10-20", 50, random.Random(0)))
    with pytest.raises(DpoDiffError):
        timestep_schedule("linear-1", 3, random.Random(0))


def test_evaluation_cost_counts_the_schedulers_real_unet_calls(engine):
    """PNDM (SD 1.5's default) makes steps + 1 UNet calls; budgets must see that."""
    from dpo_diff.cost import CostMeter
    from dpo_diff.problem import Problem

    pipe = engine.model.pipe
    original = pipe.scheduler
    pipe.scheduler = PNDMScheduler.from_config(original.config, skip_prk_steps=True)
    try:
        model = StableDiffusionModel(pipe, "tiny")
        model.meter = CostMeter(100)
        assert model.timestep_count(5) == 6
        sampling = SamplingConfig((0, 1), steps=5, guidance=7.5, timesteps=model.timestep_count(5))
        space = build_space(PROMPT, "antonym+nplib", token_ids=model.word_token_ids)
        problem = Problem(model, space, ClipLoss(engine.scorer, PROMPT), sampling)
        assert problem.eval_cost == 2 * 6 * 2
        choices = list(dict.fromkeys([space.initial_choice] + [problem.random_choice() for _ in range(10)]))
        problem.evaluate(choices)
        assert len(problem.evaluated) == 4 and model.meter.used == 96  # 4 x 24 fit in 100, a 5th would not
    finally:
        pipe.scheduler = original


def test_stochastic_scheduler_is_seeded_per_row(engine):
    from diffusers import EulerAncestralDiscreteScheduler

    pipe = engine.model.pipe
    original = pipe.scheduler
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(original.config)
    try:
        model = StableDiffusionModel(pipe, "tiny")
        one = model.generate(model.encode([PROMPT]), model.encode([""]), [5], steps=4, guidance=7.5)
        again = model.generate(model.encode(["a dog", PROMPT]), model.encode(["", ""]), [5], steps=4, guidance=7.5)
        assert torch.allclose(one[0], again[1], atol=1e-4)  # batched with another prompt: same image
        torch.manual_seed(123)  # the global RNG plays no part
        assert torch.equal(one, model.generate(model.encode([PROMPT]), model.encode([""]), [5], steps=4, guidance=7.5))
    finally:
        pipe.scheduler = original
