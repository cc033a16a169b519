"""`dpo-diff compare`: every solver at every budget on the same prompts; table, JSON and plot."""

import json

from typer.testing import CliRunner

from dpo_diff.cli import app


def test_compare_grid_on_tiny(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red car parked on a quiet street\na large dog in a green park\n")
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, [
        "compare", str(prompts), "--model", "tiny", "--solvers", "random,hybrid", "--budgets", "40,80",
        "--steps", "4", "--seeds", "1", "--iterations", "2", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "compare.json").read_text())
    assert len(report["runs"]) == 2 * 2 * 2
    assert {(s["solver"], s["budget"]) for s in report["summary"]} == {(a, b) for a in ("random", "hybrid") for b in (40, 80)}
    for run in report["runs"]:
        assert run["cost"] <= run["budget"] and run["best_loss"] <= run["initial_loss"]
        assert run["best_faithfulness"] is None  # no judge off the world
    assert (out / "compare.png").stat().st_size > 1000 and "| hybrid | 80 |" in (out / "compare.md").read_text().replace("antonym+nplib | ", "")


def test_compare_refuses_bad_budgets(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red car\n")
    result = CliRunner().invoke(app, ["compare", str(prompts), "--model", "tiny", "--budgets", "ten"])
    assert result.exit_code != 0 and "error: --budgets" in result.output
