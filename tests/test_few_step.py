"""Few-step models (SD-Turbo / SDXL-Turbo style: 1-4 steps, no classifier-free guidance).

- When the run has no more steps than the shortcut differentiates (steps <= k), the shortcut
  *is* the full gradient: same loss, same gradient.
- A t_i beyond the last step is clamped: the grad step is the run's last step.
- Negative-prompt spaces are refused without guidance, in one line; the synonym space runs.
"""

import pytest
import torch
from typer.testing import CliRunner

import dpo_diff
from dpo_diff.cli import app
from dpo_diff.errors import DpoDiffError
from dpo_diff.estimators import FullEstimator, ShortcutEstimator
from dpo_diff.estimators.schedules import to_run_steps
from dpo_diff.objectives import ClipLoss
from dpo_diff.relaxation import RelaxedChoice, encode_relaxed, tokenize_space
from dpo_diff.sampling import SamplingConfig
from dpo_diff.spaces import build_space

PROMPT = "a big red cat on the left"


@pytest.fixture(scope="module")
def turbo():
    return dpo_diff.load("tiny-sdxl-turbo", device="cpu")


def _loss_and_grad(engine, estimator, sampling, t):
    model = engine.model
    tspace = tokenize_space(build_space(PROMPT, "synonym", token_ids=model.word_token_ids), model)
    relaxed = RelaxedChoice(tspace.mask)
    weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(0))
    loss = estimator.loss(model, sampling, ClipLoss(engine.scorer, PROMPT), lambda: encode_relaxed(model, tspace, weights), t)
    (grad,) = torch.autograd.grad(loss, relaxed.logits)
    return loss.detach(), grad


@pytest.mark.parametrize("preset", ["tiny", "tiny-sdxl-turbo"])
@pytest.mark.parametrize(("steps", "k", "guidance"), [(1, 1, 0.0), (2, 2, 0.0), (1, 1, 3.0)])
def test_shortcut_is_the_full_gradient_when_it_covers_every_step(engine, turbo, preset, steps, k, guidance):
    eng = engine if preset == "tiny" else turbo
    sampling = SamplingConfig((0, 1), steps=steps, guidance=guidance)
    for t in (0, 25, 49):  # whatever t_i asks for
        short_loss, short_grad = _loss_and_grad(eng, ShortcutEstimator(k), sampling, t)
        full_loss, full_grad = _loss_and_grad(eng, FullEstimator(), sampling, t)
        assert torch.allclose(short_loss, full_loss, rtol=1e-5, atol=1e-6)
        assert torch.allclose(short_grad, full_grad, rtol=1e-4, atol=1e-7)
        assert short_grad.abs().sum() > 0


def test_one_step_shortcut_scores_what_an_evaluation_scores(turbo):
    """At 1 step a one-hot relaxed choice's shortcut loss is the loss of generating and scoring it."""
    from dpo_diff.problem import Problem
    from dpo_diff.relaxation import one_hot

    model = turbo.model
    space = build_space(PROMPT, "synonym", token_ids=model.word_token_ids, single_tokens=True)
    tspace = tokenize_space(space, model)
    sampling = SamplingConfig((0, 1), steps=1, guidance=0.0)
    objective = ClipLoss(turbo.scorer, PROMPT)
    for choice in (space.initial_choice, tuple(n - 1 for n in space.sizes)):
        weights = one_hot(space, choice, tspace.mask.shape[1])
        with torch.no_grad():
            relaxed = ShortcutEstimator(1).loss(model, sampling, objective, lambda: encode_relaxed(model, tspace, weights), 25)
        problem = Problem(model, space, objective, sampling)
        ((_, scored),) = problem.evaluate([choice])
        assert float(relaxed) == pytest.approx(scored, abs=1e-5)


def test_t_beyond_the_last_step_takes_the_last_step():
    assert to_run_steps(49, steps=4, k=1) == 3
    assert to_run_steps(49, steps=1, k=1) == 0
    assert to_run_steps(10, steps=4, k=1) == 1  # round(10 * 4 / 50)
    assert to_run_steps(40, steps=2, k=4) == 0  # k beyond the run: every step has grad


def test_turbo_preset_runs_one_step_without_guidance(turbo):
    assert (turbo.default_steps, turbo.default_guidance) == (1, 0.0)
    assert type(turbo.model.make_scheduler(1)).__name__ == "EulerAncestralDiscreteScheduler"
    result = dpo_diff.enhance(PROMPT, model=turbo, space="synonym", seeds=2, budget=30, iterations=2)
    assert (result.steps, result.guidance) == (1, 0.0)
    assert result.cost <= 30
    # one evaluation: 2 seeds x 1 step, no guidance pass, plus decoding and scoring 2 images
    meter = result.cost_breakdown
    first = 2 + 2 * (meter["decode_passes_per_image"] + meter["score_passes_per_image"])
    assert result.history[0]["cost"] == pytest.approx(first, abs=2e-3)
    assert result.best.loss <= result.initial.loss


@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_attack_with_one_to_four_steps(turbo, steps):
    result = dpo_diff.attack(PROMPT, model=turbo, steps=steps, seeds=1, budget=12 * steps, iterations=2, min_similarity=0)
    assert result.steps == steps and result.guidance == 0.0
    assert result.best.loss >= result.initial.loss
    assert result.best_images is not None and result.best_images.shape[0] == 1


def test_negative_prompt_spaces_are_refused_without_guidance(turbo):
    with pytest.raises(DpoDiffError, match="classifier-free guidance"):
        dpo_diff.enhance(PROMPT, model=turbo)  # the default space is a negative-prompt space
    with pytest.raises(DpoDiffError, match="guidance 1 here"):
        dpo_diff.enhance(PROMPT, model="tiny", guidance=1.0, space="nplib")
    # with an explicit guidance the negative prompt acts, and the run is allowed
    result = dpo_diff.enhance(PROMPT, model=turbo, guidance=2.0, space="antonym", budget=24, iterations=2)
    assert result.guidance == 2.0 and result.cost <= 24


def test_cli_refusal_is_one_line():
    res = CliRunner().invoke(app, ["enhance", PROMPT, "--model", "tiny-sdxl-turbo"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "classifier-free guidance" in lines[0]
