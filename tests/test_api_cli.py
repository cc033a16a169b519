"""End to end: the CLI and the Python API on the tiny preset, and what careless users type."""

import json
import re

import pytest
from typer.testing import CliRunner

import dpo_diff
from dpo_diff.cli import app
from dpo_diff.constraints import MeaningConstraint

from .conftest import PROMPT

runner = CliRunner()
FAST = ["--steps", "4", "--budget", "120"]


def run_cli(*args):
    return runner.invoke(app, list(args))


def test_enhance_cli_done_when_command(tmp_path):
    out = tmp_path / "X"
    result = run_cli("enhance", PROMPT, "--model", "tiny", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads((out / "result.json").read_text())
    for key in ("task", "prompt", "model", "solver", "seeds", "initial", "best", "cost", "space", "history"):
        assert key in data
    assert data["task"] == "enhance" and data["prompt"] == PROMPT and data["model"] == "tiny"
    assert set(data["best"]) == {"prompt", "negative_prompt", "loss"}
    assert data["best"]["loss"] <= data["initial"]["loss"]
    assert 0 < data["cost"] <= data["budget"]
    assert data["images"] == ["seed-0.png"] and data["best_images"] == ["best-seed-0.png"]
    for name in ("seed-0.png", "initial-seed-0.png", "best-seed-0.png"):
        assert (out / name).is_file()


def test_attack_cli_done_when_command(tmp_path):
    out = tmp_path / "X"
    result = run_cli("attack", PROMPT, "--model", "tiny", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads((out / "result.json").read_text())
    assert data["task"] == "attack"
    assert data["best"]["loss"] >= data["initial"]["loss"]
    assert data["best"]["negative_prompt"] == ""
    # the best prompt differs from the user's only by words of the space
    best, user = data["best"]["prompt"].split(), PROMPT.split()
    allowed = {s["candidates"][0]: set(s["candidates"]) for s in data["space"]["slots"]}
    assert len(best) == len(user)
    for b, u in zip(best, user):
        assert b == u or b in allowed.get(u, set())


def test_attack_candidates_keep_the_meaning(engine):
    result = dpo_diff.attack(PROMPT, model=engine, steps=4, budget=200, min_similarity=0.9)
    assert MeaningConstraint(PROMPT, 0.9)(result.best.prompt)
    assert result.best.loss >= result.initial.loss


def test_same_seed_gives_the_same_result(engine, tmp_path):
    a = dpo_diff.enhance(PROMPT, model=engine, steps=4, budget=160, seed=3, out=tmp_path / "a")
    b = dpo_diff.enhance(PROMPT, model=engine, steps=4, budget=160, seed=3, out=tmp_path / "b")
    assert a.to_dict(timings=False) == b.to_dict(timings=False)
    ja = json.loads((tmp_path / "a" / "result.json").read_text())
    jb = json.loads((tmp_path / "b" / "result.json").read_text())
    for d in (ja, jb):
        d.pop("seconds")
        for h in d["history"]:
            h.pop("seconds")
    assert ja == jb


def test_prompt_without_substitutes_returns_it_unchanged(engine):
    result = dpo_diff.attack("the of and", model=engine, steps=4, budget=100)
    assert result.best.prompt == "the of and" and "unchanged" in result.message
    # only the initial evaluation: 4 guided steps, one decode and one score of one image
    assert result.cost_breakdown["unet"] == 4 * 2
    assert result.cost_breakdown["counts"]["decode"] == result.cost_breakdown["counts"]["score"] == 1


def test_long_prompt_is_truncated_with_a_warning(tmp_path):
    prompt = " ".join(["a red car parked on a quiet street"] * 40)  # 320 words
    result = run_cli("attack", prompt, *FAST, "--out", str(tmp_path / "long"))
    assert result.exit_code == 0, result.output
    assert "cut" in result.output and "warning" in result.output
    assert result.output.count("the text encoder reads") == 1  # said once, not again by the gradient phase


def test_ctrl_c_keeps_what_was_found(engine, tmp_path, monkeypatch):
    from dpo_diff.problem import Problem

    calls = {"n": 0}
    original = Problem.log

    def interrupting(self, phase, **values):
        original(self, phase, **values)
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(Problem, "log", interrupting)
    result = run_cli("enhance", PROMPT, "--steps", "4", "--out", str(tmp_path / "int"))
    assert result.exit_code == 130
    data = json.loads((tmp_path / "int" / "result.json").read_text())
    assert data["interrupted"] is True and data["best"]["loss"] <= data["initial"]["loss"]
    assert len(data["history"]) == 4


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x")
    return path


BAD = {
    "empty prompt": (["enhance", ""], "empty"),
    "whitespace prompt": (["enhance", "   \t "], "empty"),
    "non-ascii": (["enhance", "un café noir"], "non-ASCII"),
    "budget zero": (["enhance", PROMPT, "--budget", "0"], "budget"),
    "budget negative": (["attack", PROMPT, "--budget", "-3"], "budget"),
    "budget too small": (["enhance", PROMPT, "--steps", "4", "--budget", "5"], "cannot pay"),
    "unknown solver": (["enhance", PROMPT, "--solver", "sgd"], "unknown solver"),
    "unknown space": (["enhance", PROMPT, "--space", "synonyms"], "unknown space"),
    "attack negative space": (["attack", PROMPT, "--space", "antonym"], "synonym"),
    "no guidance": (["enhance", PROMPT, "--guidance", "1"], "guidance"),
    "bad seeds": (["enhance", PROMPT, "--seeds", "x"], "seeds"),
    "unknown model": (["enhance", PROMPT, "--model", "nobody/no-such-model"], "cannot load model"),
    "missing folder": (["enhance", PROMPT, "--model", "./no/such/folder"], "does not exist"),
    "unknown device": (["enhance", PROMPT, "--device", "gpu"], "unknown device"),
    "too many steps": (["enhance", PROMPT, "--steps", "5000"], "training timesteps"),
    "bad schedule": (["enhance", PROMPT, "--schedule", "step-15"], "schedule"),
    "huge seed": (["enhance", PROMPT, "--seeds", "0,18446744073709551616"], "seeds"),
    "llm down": (["attack", PROMPT, "--source", "llm", "--llm-base-url", "http://127.0.0.1:9/v1"], "unreachable"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gets_one_clear_line(case):
    args, expected = BAD[case]
    result = run_cli(*args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert expected.lower() in lines[0].lower()


def test_out_that_is_a_file_or_unwritable(a_file):
    for out in (a_file, a_file / "sub"):
        result = run_cli("enhance", PROMPT, *FAST, "--out", str(out))
        assert result.exit_code != 0 and re.search(r"error: --out .* (is a file|is not writable)", result.output)


def test_empty_model_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("enhance", PROMPT, "--model", str(tmp_path / "empty"))
    assert result.exit_code != 0 and "is empty" in result.output


def test_space_command_shows_slots():
    result = run_cli("space", PROMPT, "--kind", "synonym")
    assert result.exit_code == 0, result.output
    assert "crimson" in result.output and "positive" in result.output


def test_an_interrupted_search_is_reported_once_by_the_entry_point(tmp_path):
    """Through ``main`` (as the installed command runs): the result, the "interrupted" line, exit 130,
    and no second "error: interrupted before the command could finish" line."""
    import subprocess
    import sys

    code = f"""
import sys
from dpo_diff.problem import Problem
original, calls = Problem.log, {{"n": 0}}
def interrupting(self, phase, **values):
    original(self, phase, **values)
    calls["n"] += 1
    if calls["n"] == 4:
        raise KeyboardInterrupt
Problem.log = interrupting
from dpo_diff.cli import main
sys.argv = ["dpo-diff", "enhance", "{PROMPT}", "--model", "tiny", "--steps", "4", "--eval-seeds", "0",
            "--out", r"{tmp_path / 'int'}"]
main()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 130, output
    assert "interrupted: the result holds the best candidate found so far" in output
    assert "error:" not in output
