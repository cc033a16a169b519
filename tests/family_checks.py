"""Checks every pipeline family's tests share (SDXL, SD3, FLUX): one place, one behaviour."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from dpo_diff.batch import ResultStore
from dpo_diff.cli import app
from dpo_diff.objectives import ClipLoss
from dpo_diff.pipelines import TokenMixture
from dpo_diff.relaxation import RelaxedChoice, encode_relaxed
from dpo_diff.sampling import SamplingConfig

def gradients_per_encoder(engine, tspace, estimator, encoders: dict, prompt: str, guidance: float) -> dict:
    """The logits' gradient with every encoder's mixture frozen but one, for each encoder in turn.

    Each gradient must be finite and reach the space's logits; the caller compares them.
    """
    model = engine.model
    relaxed = RelaxedChoice(tspace.mask)
    original = model.mixed_embeddings
    grads = {}
    for which, encoder in encoders.items():
        weights = relaxed.gumbel_weights(1.0, torch.Generator().manual_seed(0))

        def only_one(enc, mixture, keep=encoder):
            if mixture is not None and enc is not keep:
                mixture = TokenMixture(mixture.positions, mixture.candidate_ids, mixture.weights.detach())
            return original(enc, mixture)

        model.mixed_embeddings = only_one
        try:
            sampling = SamplingConfig((0,), steps=3, guidance=guidance)
            loss = estimator.loss(
                model, sampling, ClipLoss(engine.scorer, prompt), lambda: encode_relaxed(model, tspace, weights), t=25
            )
            (g,) = torch.autograd.grad(loss, relaxed.logits)
        finally:
            del model.mixed_embeddings
        assert torch.isfinite(g).all() and g[tspace.mask].abs().sum() > 0, which
        grads[which] = g
    return grads


def attack_and_batch_from_the_cli(tmp_path, model: str, prompt: str, attack_args: list[str], run_args: list[str]):
    """``dpo-diff attack`` then ``dpo-diff run`` on two prompts with ``model``; returns the store's config."""
    runner = CliRunner()
    out = tmp_path / "attack"
    res = runner.invoke(app, ["attack", prompt, "--model", model, "--min-similarity", "0", *attack_args,
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "result.json").read_text())
    assert data["model"] == model and data["best"]["loss"] >= data["initial"]["loss"]
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red cat\na blue dog on the left\n")
    res = runner.invoke(app, ["run", str(prompts), "--model", model, *run_args, "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    store = ResultStore.open_existing(tmp_path / "b")
    try:
        assert store.counts() == {"done": 2}
        return store.config()
    finally:
        store.close()
