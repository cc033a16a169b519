"""The package's shape: options declared once, no import cycle, registries that take one line."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import threading
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dpo_diff.cli import app
from dpo_diff.config import RunConfig, fields_for
from dpo_diff.errors import DpoDiffError
from dpo_diff.task import ATTACK, ENHANCE, get_task

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    return module


def test_no_import_cycle_and_long_modules_say_why():
    graph_tool = _import_graph()
    found = graph_tool.modules()
    graph = {name: graph_tool.imports(name, path, set(found)) for name, path in found.items()}
    assert graph_tool.cycles(graph) == []
    assert [name for name, _n, reasoned in graph_tool.long_modules(found) if not reasoned] == []


def test_the_cycle_finder_finds_a_cycle():
    graph_tool = _import_graph()
    assert graph_tool.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_run_option_is_on_the_command_line_with_its_help():
    for command, task in (("enhance", "enhance"), ("attack", "attack"), ("run", None)):
        text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        for f in fields_for(task):
            assert "--" + f.name.replace("_", "-") in text, (command, f.name)
    enhance_help = runner.invoke(app, ["enhance", "--help"], env={"COLUMNS": "200"}).output
    assert "--min-similarity" not in enhance_help  # an attack-only option


def test_run_config_round_trips_and_refuses_unknown_options():
    config = RunConfig(solver="epo", seeds=(3, 7), objective="pickscore", budget=123)
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(DpoDiffError, match="unknown option"):
        RunConfig.from_dict({"solvr": "epo"})
    with pytest.raises(DpoDiffError, match="min-similarity"):
        RunConfig(min_similarity=1.5).check("attack")
    with pytest.raises(DpoDiffError, match="unknown objective"):
        RunConfig(objective="aesthetics").check("enhance")
    stored = RunConfig(seeds="2", eval_seeds="2", device="cpu").stored("enhance", guidance=7.5)
    assert stored["seeds"] == [0, 1] and stored["eval_seeds"] == [1000, 1001] and stored["guidance"] == 7.5
    assert "device" not in stored and "min_similarity" not in stored  # not a result of an enhance run


def test_the_task_owns_its_direction():
    assert ENHANCE.minimizes(lower_is_better=True) and not ATTACK.minimizes(lower_is_better=True)
    assert not ENHANCE.minimizes(lower_is_better=False) and ATTACK.minimizes(lower_is_better=False)
    assert ENHANCE.change(1.0, 0.8) == pytest.approx(0.2) and ATTACK.change(1.0, 0.8) == pytest.approx(-0.2)
    assert ENHANCE.change(0.3, 0.5, lower_is_better=False) == pytest.approx(0.2)
    with pytest.raises(DpoDiffError, match="unknown task"):
        get_task("improve")


def test_pickscore_matches_clip_logits_and_is_differentiable(engine):
    from dpo_diff.objectives import Objective, PickScore

    objective = engine.objective("pickscore", "a red car")
    assert isinstance(objective, PickScore) and isinstance(objective, Objective)
    assert not objective.lower_is_better
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    values = objective(images)
    scorer = objective.scorer
    batch = scorer.tokenizer(["a red car"], padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():  # the reference: CLIPModel's own logits_per_image = logit_scale * cosine
        reference = scorer.model(input_ids=batch.input_ids, pixel_values=scorer.preprocess(images)).logits_per_image
    assert torch.allclose(values.detach(), reference[:, 0], atol=1e-4)
    values.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert engine.objective("pickscore", "a red car").scorer is scorer  # loaded once per engine


def test_pickscore_objective_runs_from_the_command_line(tmp_path):
    out = tmp_path / "pick"
    result = runner.invoke(app, ["enhance", "a red car", "--model", "tiny", "--objective", "pickscore", "--budget", "200",
                                 "--eval-seeds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "higher is the goal" in result.output
    data = json.loads((out / "result.json").read_text())
    assert data["objective"] == {"name": "pickscore", "lower_is_better": False}
    assert data["best"]["loss"] >= data["initial"]["loss"]  # the best by PickScore is the highest


def test_one_engine_serves_two_runs_at_once(engine):
    import dpo_diff

    options = dict(model=engine, budget=300, eval_seeds=0, solver="hybrid", iterations=2)
    alone = [dpo_diff.enhance("a red car", **options), dpo_diff.attack("a quiet street", **options)]
    meter = engine.model.meter
    together: list = [None, None]

    def run(i, fn, prompt):
        together[i] = fn(prompt, **options)

    threads = [threading.Thread(target=run, args=(0, dpo_diff.enhance, "a red car")),
               threading.Thread(target=run, args=(1, dpo_diff.attack, "a quiet street"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        assert (a.best, a.cost) == (b.best, b.cost)
    assert engine.model.meter is meter  # nobody swapped the shared adapter's meter


def test_a_registry_entry_is_all_an_objective_needs(engine, monkeypatch):
    """A new objective: a module with load/bind, plus one registry line; nothing else changes."""
    from dpo_diff import objectives
    from dpo_diff.objectives.base import ObjectiveSpec

    module = type(sys)("fake_brightness")

    class Brightness:
        name, lower_is_better, description = "brightness", False, "mean pixel value"

        def __init__(self, scorer, prompt):
            self.scorer = scorer

        def __call__(self, images):
            return images.float().mean(dim=(1, 2, 3))

    module.load = lambda engine, name: engine.scorer
    module.bind = Brightness
    monkeypatch.setitem(sys.modules, "fake_brightness", module)
    monkeypatch.setitem(objectives.OBJECTIVES, "brightness",
                        ObjectiveSpec("brightness", False, "mean pixel value", "fake_brightness"))
    import dpo_diff

    result = dpo_diff.enhance("a red car", model=engine, objective="brightness", budget=200, eval_seeds=0, solver="epo")
    assert result.objective == "brightness" and result.best.loss >= result.initial.loss
    assert dataclasses.is_dataclass(result)
