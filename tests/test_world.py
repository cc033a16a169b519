"""The bundled world: scenes, captions, the pixel judge, and training end to end (quick mode)."""

import json
import random

import numpy as np
from typer.testing import CliRunner

import dpo_diff
from dpo_diff.cli import app
from dpo_diff.world.judge import attribute_accuracy, faithfulness, read
from dpo_diff.world.scenes import Obj, Scene, caption, random_scene, render


def test_captions_use_rare_synonyms_rarely():
    rng = random.Random(0)
    red = Scene((Obj("red", "circle", "large", "left"),))
    words = [caption(red, rng).split()[2] for _ in range(20_000)]
    assert words.count("red") > 19_900 and 0 < words.count("crimson") < 60
    assert caption(red) == "a large red circle on the left"
    assert caption(Scene((Obj("red", "circle", "small", "center"),), "blurry")) == "a blurry picture of a small red circle in the center"


def test_judge_reads_generator_pictures():
    rng = random.Random(7)
    scenes = [random_scene(rng) for _ in range(400)]
    images = [render(s, np.random.default_rng(i)) for i, s in enumerate(scenes)]
    accuracy = attribute_accuracy(images, scenes)
    assert min(accuracy.values()) >= 0.95, accuracy
    assert np.mean([faithfulness(i, s) for i, s in zip(images, scenes)]) >= 0.95
    empty = np.full((32, 32, 3), 0.88, dtype=np.float32)
    assert read(empty) == [] and faithfulness(empty, scenes[0]) == 0.0


def test_quick_training_saves_a_pipeline_that_loads_like_a_hub_model(tmp_path):
    folder = tmp_path / "world"
    result = CliRunner().invoke(app, ["world", "train", "--quick", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "model_index.json").is_file() and (folder / "scorer" / "config.json").is_file()
    info = json.loads((folder / "training.json").read_text())
    assert set(info["seconds"]) == {"vae", "text_encoder", "unet", "scorer"}
    engine = dpo_diff.load(str(folder), scorer=str(folder / "scorer"), device="cpu")
    assert engine.model.height == 32 and engine.model.unet.dtype.is_floating_point
    run = dpo_diff.enhance("a large red circle on the left", model=engine, steps=4, budget=80)
    assert run.best.loss <= run.initial.loss


def _world_or_skip():
    import pytest

    from dpo_diff.models import bundled_models

    if "world" not in bundled_models():
        pytest.skip("the bundled world is not installed")


def test_bundled_world_is_the_default_model(tmp_path):
    _world_or_skip()
    result = CliRunner().invoke(app, ["enhance", "a large crimson circle on the left", "--budget", "400", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["model"] == "world" and data["best"]["loss"] <= data["initial"]["loss"]


def test_compare_reports_the_judge_on_the_world(tmp_path):
    _world_or_skip()
    from dpo_diff import compare

    report = compare.compare(["a large red circle on the left", "a small blue square at the top"], ["random"], [160],
                             seeds=1, iterations=2)
    assert all(r["best_faithfulness"] is not None and 0 <= r["best_faithfulness"] <= 1 for r in report["runs"])
    assert report["summary"][0]["initial_faithfulness"] is not None


def test_scorer_judge_agreement_on_generated_pictures(tmp_path):
    _world_or_skip()
    from dpo_diff.models import bundled_models
    from dpo_diff.world.card import write_card
    from dpo_diff.world.quality import held_out_scenes, scorer_judge_agreement

    engine = dpo_diff.load("world", device="cpu")
    scenes = held_out_scenes(6)
    report = scorer_judge_agreement(engine, scenes, seeds=(0, 1))  # 12 pictures, CFG 7.5, 20 DDIM steps
    attributes, pairs = report["attributes"], report["pairs"]
    assert set(attributes) == {"color", "shape", "size", "position"}
    chance = {"color": 1 / 8, "shape": 1 / 3, "size": 1 / 2, "position": 1 / 5}
    for name, row in attributes.items():
        assert 0 < row["images"] <= 12 and 0 <= row["mistakes"] <= row["images"]
        assert 0 <= row["agree"] <= 1 and row["agree"] > chance[name], (name, row)
        assert (row["agree_on_mistakes"] is None) == (row["mistakes"] == 0)
        assert row["agree_on_mistakes"] is None or 0 <= row["agree_on_mistakes"] <= 1
    assert pairs["pairs_total"] == 6 and 0 <= pairs["pairs"] <= 6
    assert (pairs["agree"] is None) == (pairs["pairs"] == 0) and (pairs["agree"] is None or 0 <= pairs["agree"] <= 1)

    # the card shows it beside the shipped numbers
    folder = tmp_path / "card"
    folder.mkdir()
    shipped = json.loads((bundled_models()["world"] / "quality.json").read_text())
    card = write_card(folder, {**shipped, "scorer_judge_agreement": report}).read_text()
    assert "## Scorer vs judge on generated pictures" in card and "chance 50 %" in card
    assert json.loads((folder / "quality.json").read_text())["scorer_judge_agreement"] == report
