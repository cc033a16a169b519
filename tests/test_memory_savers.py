"""Gradient checkpointing inside the denoiser: the same values and gradients, less memory, and
the recompute counted in the cost (SD and SD3 presets)."""

from __future__ import annotations

import pytest
import torch

import dpo_diff
from dpo_diff.cost import CostMeter
from dpo_diff.estimators import FullEstimator, ShortcutEstimator
from dpo_diff.objectives import ClipLoss
from dpo_diff.relaxation import RelaxedChoice, encode_relaxed, tokenize_space
from dpo_diff.sampling import SamplingConfig
from dpo_diff.spaces import build_space

PROMPT = "a red car parked on a quiet street"


def _gradient(engine, estimator, space_kind: str, guidance: float):
    model = engine.model.with_meter(CostMeter(recompute=engine.model.checkpointed))
    space = build_space(PROMPT, space_kind, token_ids=model.word_token_ids)
    tspace = tokenize_space(space, model)
    relaxed = RelaxedChoice(tspace.mask)
    weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(0))
    sampling = SamplingConfig((0,), steps=4, guidance=guidance)
    loss = estimator.loss(model, sampling, ClipLoss(engine.scorer, PROMPT),
                          lambda: encode_relaxed(model, tspace, weights), t=50)
    (grad,) = torch.autograd.grad(loss, relaxed.logits)
    assert model.meter.used == pytest.approx(estimator.cost(50, sampling, model.meter))  # the cost model stays exact
    return float(loss.detach()), grad, model.meter


@pytest.mark.parametrize("preset,space,guidance", [("tiny", "synonym+antonym", 7.5), ("tiny-sd3", "synonym", 1.0)])
@pytest.mark.parametrize("estimator", [ShortcutEstimator(2), FullEstimator()], ids=["shortcut", "full"])
def test_checkpointing_inside_the_denoiser_changes_cost_not_results(preset, space, guidance, estimator):
    plain = dpo_diff.load(preset, device="cpu")
    saver = dpo_diff.load(preset, device="cpu", checkpoint=True)
    assert saver.model.checkpointed and saver.model.unet.is_gradient_checkpointing
    loss_a, grad_a, meter_a = _gradient(plain, estimator, space, guidance)
    loss_b, grad_b, meter_b = _gradient(saver, estimator, space, guidance)
    assert loss_a == loss_b
    assert torch.allclose(grad_a, grad_b, rtol=1e-5, atol=1e-8) and grad_a.abs().sum() > 0
    differentiated = meter_a.counts["unet_backward"]
    assert differentiated > 0 and meter_b.counts["unet_recompute"] == differentiated
    assert meter_b.used == meter_a.used + differentiated  # one more forward per differentiated pass, counted


def test_checkpoint_option_runs_from_the_api():
    result = dpo_diff.enhance(PROMPT, model="tiny", checkpoint=True, solver="gpo", budget=200, iterations=2,
                              steps=4, eval_seeds=0)
    assert result.cost_breakdown["counts"]["unet_recompute"] > 0
