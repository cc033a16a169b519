"""What a user sees: pictures, the judge beside the loss, no silent overwrites, errors that say what to do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from dpo_diff.cli import app
from dpo_diff.errors import DpoDiffError
from dpo_diff.task import ATTACK, ENHANCE

runner = CliRunner()
TINY = ["--model", "tiny", "--budget", "120", "--steps", "4", "--eval-seeds", "1", "--iterations", "1"]


def _world_or_skip():
    from dpo_diff.models import bundled_models

    if "world" not in bundled_models():
        pytest.skip("the bundled world is not installed")


# 1 ------------------------------------------------------------------------------ pictures
def test_pictures_are_enlarged_and_labeled_and_the_originals_kept(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["enhance", "a red car", *TINY, "--seeds", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        assert Image.open(out / f"initial-seed-{seed}.png").size == (32, 32)  # native size kept
        pair = Image.open(out / f"seed-{seed}.png")
        assert pair.width >= 2 * 256 and pair.height > 256  # both pictures >= 256 px, with label rows
        top = pair.crop((0, 0, pair.width, 12)).convert("L")
        assert min(top.getdata()) < 128  # a label is drawn above the pictures
    data = json.loads((out / "result.json").read_text())
    assert data["images"] == ["seed-0.png", "seed-1.png"]


def test_labels_carry_each_seeds_loss():
    import torch

    from dpo_diff.outputs import _captions, side_by_side

    class Result:
        initial_seed_losses, best_seed_losses = [0.5, 0.25], [0.125, 0.75]
        initial_seed_faithfulness, best_seed_faithfulness = [1.0, 0.5], None

    assert _captions(Result(), 1) == ("loss 0.2500, judged 50 %", "loss 0.7500")
    image = side_by_side(torch.zeros(3, 8, 8), torch.ones(3, 8, 8), labels=("initial", "best"), captions=("a", "b"))
    assert image.width == 2 * 256 + 8  # 8 px pictures enlarged 32x (nearest neighbour) and set side by side


# 2 ------------------------------------------------------------------------------ the judge
def test_a_judged_fall_is_flagged_not_improved():
    assert ENHANCE.flagged(0.9, 0.6) and not ENHANCE.flagged(0.6, 0.9) and not ENHANCE.flagged(None, 0.5)
    assert not ATTACK.flagged(0.9, 0.6)  # an attack wants the pictures to fail
    from dpo_diff.batch.evaluate import _held_out_summary

    rows = [{"result_json": json.dumps({"held_out": {"initial": {"loss": 1.0, "faithfulness": f0},
                                                     "best": {"loss": 0.9, "faithfulness": f1}}})}
            for f0, f1 in ((0.8, 0.8), (0.8, 0.4))]
    summary = _held_out_summary(rows, 1.0, ENHANCE)
    assert summary["held_out_flagged"] == 1 and summary["held_out_share"] == 0.5  # the flagged one is not counted


def test_attack_table_shows_the_rewrites_similarity(tmp_path):
    result = runner.invoke(app, ["attack", "a red car parked on a quiet street", *TINY], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "similarity" in result.output and "negative prompt" not in result.output
    assert "higher is the goal" in result.output


def test_world_batch_report_shows_the_judged_column_in_a_browser(tmp_path):
    _world_or_skip()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless browser installed (Debian: apt-get install chromium); .ci/run installs one")
    prompts = tmp_path / "p.txt"
    prompts.write_text("# two world captions\na large red square at the top\na small blue circle on the left\n")
    out = tmp_path / "batch"
    result = runner.invoke(app, ["run", str(prompts), "--out", str(out), "--budget", "150", "--eval-seeds", "1",
                                 "--iterations", "1"])
    assert result.exit_code == 0, result.output
    assert "1 comment line (#) skipped" in result.output and "2 prompts" in result.output
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert "judged faithfulness (initial -&gt; best)" in dom
    cells = dom.split('<td class="judged">')[1:]
    assert len(cells) == 2 and all(" % -&gt; " in c.split("</td>")[0] for c in cells)
    assert 'data-images-loaded="4/4"' in dom  # 2 pairs + 2 plots


# 3 ------------------------------------------------------------------------------ --out
def test_out_with_a_result_is_refused_then_replaced_with_overwrite(tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["enhance", "a red car", *TINY, "--seeds", "2", "--out", str(out)]).exit_code == 0
    refused = runner.invoke(app, ["enhance", "a blue bike", *TINY, "--out", str(out)])
    assert refused.exit_code == 2 and "--overwrite" in refused.output and len(refused.output.strip().splitlines()) == 1
    assert json.loads((out / "result.json").read_text())["prompt"] == "a red car"  # untouched
    (out / "notes.txt").write_text("mine")
    done = runner.invoke(app, ["enhance", "a blue bike", *TINY, "--out", str(out), "--overwrite"])
    assert done.exit_code == 0, done.output
    assert json.loads((out / "result.json").read_text())["prompt"] == "a blue bike"
    assert not (out / "seed-1.png").exists()  # the old run's second seed is gone
    assert (out / "notes.txt").read_text() == "mine"  # nothing else is touched


def test_run_refuses_a_folder_that_is_not_a_results_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("\\documentclass{article}")
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red car\n")
    result = runner.invoke(app, ["run", str(prompts), "--out", str(out), "--model", "tiny", "--budget", "100"])
    assert result.exit_code == 2 and "not a dpo-diff results folder" in result.output and "thesis.tex" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


# 4 ------------------------------------------------------------------------------ errors
def test_a_missing_model_names_the_presets_and_how_to_get_it():
    result = runner.invoke(app, ["enhance", "a red car", "--model", "someone/not-a-model", "--budget", "100"])
    assert result.exit_code != 0
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and "tiny" in line and "save_pretrained" in line and "stacktrace" not in line


def test_world_commands_on_a_missing_folder_say_train_it_first(tmp_path):
    result = runner.invoke(app, ["world", "card", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "train a world first with: dpo-diff world train" in result.output


# 5 ------------------------------------------------------------------------------ a trained world is complete
def test_a_world_folder_brings_its_scorer_steps_and_judge(tmp_path):
    _world_or_skip()
    import dpo_diff
    from dpo_diff.models import bundled_models

    folder = tmp_path / "my-world"
    shutil.copytree(bundled_models()["world"], folder)
    engine = dpo_diff.load(str(folder), device="cpu")
    assert engine.scorer_name == str(folder / "scorer") and engine.default_steps == 20
    result = dpo_diff.enhance("a large red square at the top", model=engine, budget=150, iterations=1, eval_seeds=1)
    assert result.judged is not None  # the world's judge applies to a world folder too


# 6 ------------------------------------------------------------------------------ progress
def test_compare_says_how_much_work_before_it_starts_and_labels_the_space(tmp_path):
    import dpo_diff.compare as comparison

    prompts = tmp_path / "p.txt"
    prompts.write_text("a red car\n")
    labels = []
    comparison.compare(["a red car"], ["random"], [100], [None], "enhance", "tiny", steps=4, eval_seeds=0,
                       progress=lambda d, t, what: labels.append(what))
    assert labels[0] == "antonym+nplib / random / budget 100"
    result = runner.invoke(app, ["compare", str(prompts), "--model", "tiny", "--solvers", "random", "--budgets", "100",
                                 "--steps", "4", "--eval-seeds", "0", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "compare: 1 run (1 prompt x 1 solver x 1 budget)" in result.output


# 7 ------------------------------------------------------------------------------ 80 columns
def test_help_at_80_columns_is_not_squeezed():
    text = runner.invoke(app, ["enhance", "--help"], env={"COLUMNS": "80"}).output
    line = next(ln for ln in text.splitlines() if "--solver" in ln)
    description = line.split("<str>")[-1].strip(" │")
    assert "random | epo | gpo | hybrid" in description  # a whole phrase, not a 22-character sliver


def test_tables_fold_at_80_columns_instead_of_cutting(finished_batch):
    result = runner.invoke(app, ["evaluate", str(finished_batch)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines() if not line.startswith("wrote"))


@pytest.fixture(scope="module")
def finished_batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    prompts = folder / "p.txt"
    prompts.write_text("prompt\na red car\na blue bike on a wet road\n")
    result = runner.invoke(app, ["run", str(prompts), "--out", str(folder / "run"), *TINY])
    assert result.exit_code == 0, result.output
    assert "read as a header, not a prompt" in result.output and "2 prompts" in result.output
    return folder / "run"


# 8 ------------------------------------------------------------------------------ small ones
def test_bad_options_are_refused_before_torch_is_imported():
    code = ("import sys; from dpo_diff.cli import main; sys.argv = ['dpo-diff', 'attack', 'a red car', {}];\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print('torch' in sys.modules, e.code)")
    for args in ("'--budget', '0'", "'--min-similarity', '1.5'", "'--objective', 'nope'", "'--seeds', 'x'"):
        done = subprocess.run([sys.executable, "-c", code.format(args)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "200"})
        assert done.stdout.strip().endswith("False 2"), (args, done.stdout, done.stderr)
        assert done.stderr.count("error:") == 1


def test_text_files_skip_comments_and_a_header(tmp_path):
    from dpo_diff.batch import load_prompts

    path = tmp_path / "p.txt"
    path.write_text("prompt\n# a comment\na red car\n  # another\na blue bike\n")
    records = load_prompts(str(path))
    assert [r.text for r in records] == ["a red car", "a blue bike"]
    assert any("header" in n for n in records.notes()) and any("2 comment lines" in n for n in records.notes())
    single = tmp_path / "one.txt"
    single.write_text("prompt\n")  # a lone line is a prompt, not a header
    assert [r.text for r in load_prompts(str(single))] == ["prompt"]
    with pytest.raises(DpoDiffError, match="no prompts"):
        (tmp_path / "c.txt").write_text("# only a comment\n")
        load_prompts(str(tmp_path / "c.txt"))


def test_grammar_of_counts():
    from dpo_diff.cli.common import plural

    assert plural(1, "prompt") == "1 prompt" and plural(2, "candidate") == "2 candidates"
    help_text = runner.invoke(app, ["world", "train", "--help"], env={"COLUMNS": "200"}).output
    assert "47 minutes" in help_text and "search" not in help_text.lower()


def test_space_command_shows_scores_and_token_counts():
    result = runner.invoke(app, ["space", "a lanky man with a red coat", "--min-similarity", "0"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "lanky (2 tokens)" in result.output  # a prompt word of several tokens stays in the space
    assert "left out, each with its reason" in result.output
    checked = runner.invoke(app, ["space", "a lanky man with a red coat"], env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output  # by default: what an attack searches, after its meaning check
    import re

    sizes = [int(re.search(r"(\d+) choices", r.output).group(1)) for r in (result, checked)]
    assert sizes[1] < sizes[0] and "refused by the meaning check" in " ".join(checked.output.split())
