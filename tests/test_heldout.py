"""Held-out evaluation, paired statistics and the honest cost meter."""

import json

import pytest
import torch
from typer.testing import CliRunner

import dpo_diff
from dpo_diff.cli import app
from dpo_diff.cost import CostMeter, measure_cost_ratios
from dpo_diff.errors import DpoDiffError
from dpo_diff.checks import resolve_eval_seeds
from dpo_diff.stats import bootstrap_ci, paired

from .conftest import PROMPT


def test_eval_seeds_are_new_to_the_search():
    assert resolve_eval_seeds(4, [0, 1]) == [1000, 1001, 1002, 1003]
    assert resolve_eval_seeds(2, [1000, 5]) == [1001, 1002]  # never a search seed
    assert resolve_eval_seeds("7,9", [0]) == [7, 9]
    assert resolve_eval_seeds(0, [0]) == [] and resolve_eval_seeds("0", [0]) == []
    assert resolve_eval_seeds(None, [0]) == [1000, 1001, 1002, 1003]  # the default
    with pytest.raises(DpoDiffError, match="shares seed"):
        resolve_eval_seeds([0, 7], [0, 1])
    with pytest.raises(DpoDiffError, match="eval-seeds"):
        resolve_eval_seeds("x", [0])
    with pytest.raises(DpoDiffError, match="eval-seeds"):
        resolve_eval_seeds(-1, [0])


def test_every_result_has_a_held_out_block_whose_cost_is_apart(engine, tmp_path):
    result = dpo_diff.enhance(PROMPT, model=engine, solver="random", budget=60, steps=3, seeds=2, eval_seeds=3,
                              out=tmp_path)
    held = result.held_out
    assert held is not None and held.seeds == [1000, 1001, 1002]
    assert len(held.initial.losses) == 3 and len(held.best.losses) == 3
    # re-rendering the initial prompt on new seeds gives other losses than on the search seeds
    assert held.initial.loss != pytest.approx(result.initial.loss, abs=1e-6)
    assert result.cost <= 60 and held.cost > 0  # the held-out renders are not drawn from the budget
    # held-out losses equal a fresh evaluation of the same texts on those seeds
    model = engine.model
    model.meter = CostMeter()
    images = model.generate(model.encode([result.best.prompt]), model.encode([result.best.negative_prompt]),
                            held.seeds, 3, result.guidance)
    fresh = dpo_diff.objectives.ClipLoss(engine.scorer, PROMPT)(images)
    assert torch.allclose(fresh, torch.tensor(held.best.losses), atol=1e-5)
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["held_out"]["seeds"] == [1000, 1001, 1002]
    assert data["held_out"]["best"]["loss"] == pytest.approx(held.best.loss)
    assert data["held_out"]["cost"] > 0


def test_held_out_can_be_turned_off(engine):
    result = dpo_diff.enhance(PROMPT, model=engine, solver="random", budget=30, steps=3, eval_seeds=0)
    assert result.held_out is None and result.to_dict()["held_out"] is None


def test_cli_refuses_held_out_seeds_shared_with_the_search():
    out = CliRunner().invoke(app, ["enhance", PROMPT, "--model", "tiny", "--seeds", "0,1", "--eval-seeds", "1,5"])
    assert out.exit_code == 2 and "error: --eval-seeds" in out.output and "Traceback" not in out.output


def test_cli_shows_held_out_losses(tmp_path):
    out = CliRunner().invoke(app, ["enhance", PROMPT, "--model", "tiny", "--budget", "40", "--steps", "3",
                                   "--solver", "random", "--eval-seeds", "2", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "held-out seeds" in out.output and "lower is the goal" in out.output
    assert json.loads((tmp_path / "result.json").read_text())["held_out"]["seeds"] == [1000, 1001]


# ----------------------------------------------------------------------------------- cost
def test_the_meter_counts_the_vae_decode_and_the_scorer(engine):
    """One evaluation = UNet passes + decode + score per image, converted by measured FLOPs."""
    model = engine.model
    decode, score, gflops = measure_cost_ratios(model, engine.scorer)
    assert decode > 0 and score > 0 and gflops["decode"] > 0 and gflops["score"] > 0
    result = dpo_diff.enhance(PROMPT, model=engine, solver="random", budget=200, steps=3, seeds=2, eval_seeds=0)
    b = result.cost_breakdown
    n_eval = b["counts"]["score"] // 2  # candidates evaluated, 2 seeds each
    assert b["counts"]["decode"] == b["counts"]["score"] == 2 * n_eval
    assert b["decode"] == pytest.approx(decode * 2 * n_eval, abs=1e-2)
    assert b["score"] == pytest.approx(score * 2 * n_eval, abs=1e-2)
    assert result.cost == pytest.approx(b["unet"] + b["decode"] + b["score"], abs=1e-2)
    assert b["unet"] == n_eval * 2 * 3 * 2  # seeds x steps x guidance


def test_a_gradient_step_pays_for_its_decode_and_score_backward(engine):
    from dpo_diff.estimators import ShortcutEstimator
    from dpo_diff.objectives import ClipLoss
    from dpo_diff.relaxation import RelaxedChoice, encode_relaxed, tokenize_space
    from dpo_diff.sampling import SamplingConfig
    from dpo_diff.spaces import build_space

    model = engine.model
    decode, score, _ = measure_cost_ratios(model, engine.scorer)
    model.meter = CostMeter(None, decode_passes=decode, score_passes=score)
    tspace = tokenize_space(build_space(PROMPT, "antonym", token_ids=model.word_token_ids), model)
    weights = RelaxedChoice(tspace.mask).gumbel_weights(1.0, torch.Generator().manual_seed(0))
    sampling = SamplingConfig((0, 1), steps=6, guidance=7.5)
    estimator = ShortcutEstimator(1)
    estimator.loss(model, sampling, ClipLoss(engine.scorer, PROMPT), lambda: encode_relaxed(model, tspace, weights), 25)
    assert model.meter.used == pytest.approx(estimator.cost(25, sampling, model.meter))
    unet_only = estimator.cost(25, sampling)
    assert model.meter.used == pytest.approx(unet_only + 3 * 2 * (decode + score))  # forward + 2x backward, 2 seeds


def test_sd15_conversion_at_512_px():
    """The published SD-1.5 architecture: one decode is about 3.1 UNet passes (2,515 vs 803 GFLOP)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("cost_units", Path(__file__).parents[1] / "benchmarks" / "cost_units.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = module.published("sd15-random", 512)
    assert row["unet_gflop"] == pytest.approx(803, rel=0.01)
    assert row["decode_gflop"] == pytest.approx(2515, rel=0.01)
    assert row["decode_passes"] == pytest.approx(3.13, abs=0.01)
    assert 0 < row["score_passes"] < 0.02


# ------------------------------------------------------------------------------ statistics
def test_paired_comparison_counts_wins_and_ties_and_brackets_the_mean():
    a = [0.10, 0.20, 0.30, 0.40, 0.50]
    b = [0.20, 0.20, 0.35, 0.45, 0.60]  # a is lower (better for enhance) on 4, tied on 1
    p = paired("a", a, "b", b)
    assert (p.a_wins, p.b_wins, p.ties, p.n) == (4, 0, 1, 5)
    assert p.mean_difference == pytest.approx(0.06)
    assert p.ci_low <= 0.06 <= p.ci_high and p.ci_low >= 0  # every difference >= 0
    attack = paired("a", a, "b", b, maximize=True)  # attack: higher loss is better
    assert (attack.a_wins, attack.b_wins) == (0, 4) and attack.mean_difference == pytest.approx(-0.06)
    lo, hi = bootstrap_ci([1.0, -1.0] * 20)
    assert lo < 0 < hi  # no effect: the interval holds 0
    assert bootstrap_ci([1.0, -1.0] * 20) == (lo, hi)  # seeded: the same table twice


def test_compare_reports_held_out_figures_and_paired_win_rates(engine, tmp_path):
    from dpo_diff import compare as comparison

    report = comparison.compare(
        [PROMPT, "a large dog in a green park"], ["random", "epo"], [40], model=engine, steps=3, seeds=1,
        eval_seeds=2, search_seeds=2,
    )
    assert len(report["runs"]) == 2 * 2 * 2 and {r["search_seed"] for r in report["runs"]} == {0, 1}
    for s in report["summary"]:
        assert s["held_out_best_loss"] is not None and s["held_out_change"] is not None and s["search_seeds"] == 2
    (pair,) = report["pairs"]
    assert pair["measure"] == "held_out_best_loss" and pair["n"] == 2
    assert pair["a_wins"] + pair["b_wins"] + pair["ties"] == 2
    text = comparison.to_markdown(report)
    assert "held-out" in text and "| 40 | random | epo | 2 |" in text


def test_an_attack_records_the_meaning_check_of_its_best_prompt(engine):
    result = dpo_diff.attack(PROMPT, model=engine, steps=3, budget=60, solver="random", min_similarity=0.5, eval_seeds=0)
    data = json.loads(json.dumps(result.to_dict()))  # JSON-safe
    if result.best.prompt != PROMPT:
        assert data["meaning"]["accepted"] is True and 0 < data["meaning"]["similarity"] <= 1
        assert data["meaning"]["sense_mode"] == "first"
    else:
        assert data["meaning"] is None
