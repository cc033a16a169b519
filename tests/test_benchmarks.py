"""The benchmark scripts run (quick mode), so they cannot rot. Figures are not asserted on time."""

import json
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_script(monkeypatch, name: str, *args: str) -> None:
    """Run benchmarks/<name>.py as `python benchmarks/<name>.py ARGS` would; it must exit 0."""
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *args])
    try:
        runpy.run_path(str(ROOT / "benchmarks" / f"{name}.py"), run_name="__main__")
    except SystemExit as exit_:
        assert exit_.code == 0


def test_gradient_cost_benchmark_quick(tmp_path, monkeypatch, capsys):
    out = tmp_path / "gradient_cost.json"
    _run_script(monkeypatch, "gradient_cost", "--quick", "--json", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert {(r["steps"], r["estimator"]) for r in rows} == {
        (s, e) for s in (5, 10) for e in ("shortcut", "full", "full-checkpoint")
    }
    short = [r["held_mib"] for r in rows if r["estimator"] == "shortcut"]
    assert short[0] == short[1]  # flat in the number of steps
    assert "held MiB" in capsys.readouterr().out


def test_world_study_quick(tmp_path, monkeypatch, capsys):
    import pytest

    from dpo_diff.models import bundled_models

    if "world" not in bundled_models():
        pytest.skip("the bundled world is not installed")
    out = tmp_path / "study"
    _run_script(monkeypatch, "world_study", "--study", "solvers", "--quick", "--seeds", "1", "--out", str(out))
    report = json.loads((out / "compare.json").read_text())
    assert {s["solver"] for s in report["summary"]} == {"random", "hybrid"}
    assert all(s["faithfulness"] is not None for s in report["summary"])
    assert "judged faithfulness" in capsys.readouterr().out


def test_gpu_cost_benchmark_quick(tmp_path, monkeypatch, capsys):
    """CPU smoke run: the SD-1.5 config (random weights) at 64 px, tiny-sdxl, tiny-sd3 and tiny-flux, every row kind."""
    out = tmp_path / "gpu_cost.json"
    _run_script(monkeypatch, "gpu_cost", "--quick", "--json", str(out))
    data = json.loads(out.read_text())
    rows = data["rows"]
    for model in ("sd15", "sdxl", "sd35", "flux"):
        mine = [r for r in rows if r["model"] == model]
        whats = {r["what"] for r in mine}
        assert {"shortcut grad", "full grad", "full grad (checkpoint)", "EPO generation, one at a time"} <= whats
        assert any(w.startswith("hybrid run") for w in whats) and any(w.startswith("epo run") for w in whats)
        assert all(r["seconds"] > 0 and r["unet_passes"] > 0 for r in mine)
        batched = next(r for r in mine if r["what"].startswith("EPO generation, batch"))
        single = next(r for r in mine if r["what"] == "EPO generation, one at a time")
        assert batched["unet_passes"] == single["unet_passes"]  # same work, other batching
    assert {r["resolution"] for r in rows if r["model"] == "sd15"} == {64}
    assert "peak GiB" in capsys.readouterr().out


def test_cost_units_benchmark_quick(tmp_path, monkeypatch, capsys):
    out = tmp_path / "cost_units.json"
    _run_script(monkeypatch, "cost_units", "--quick", "--json", str(out))
    rows = {r["model"]: r for r in json.loads(out.read_text())}
    assert abs(rows["sd15-random"]["decode_passes"] - 3.13) < 0.01
    assert rows["tiny"]["decode_passes"] > 0 and rows["tiny"]["score_passes"] > 0
    assert "decode = passes" in capsys.readouterr().out


def test_gradient_cosine_table_quick(tmp_path, monkeypatch, capsys):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red car parked on a quiet street\n")
    out = tmp_path / "gradient_cost.json"
    _run_script(monkeypatch, "gradient_cost", "--cosine-only", "--cosine-model", "tiny", "--cosine-prompts", str(prompts),
                "--cosine-seeds", "1", "--cosine-steps", "4", "--cosine-t", "10,50", "--json", str(out))
    rows = json.loads((tmp_path / "gradient_cosine.json").read_text())["rows"]
    assert {r["t"] for r in rows} == {10, 50} and all(-1 <= r["cosine"] <= 1 for r in rows)
    # at t_i = 50 of 4 steps with K = 1 the shortcut starts at the last step: not the full chain
    assert "cosine(shortcut" in capsys.readouterr().out


def test_world_attacks_quick(tmp_path, monkeypatch, capsys):
    import pytest

    from dpo_diff.models import bundled_models
    from dpo_diff.world.parse import parse_prompt

    if "world" not in bundled_models():
        pytest.skip("the bundled world is not installed")
    out = tmp_path / "rows.json"
    _run_script(monkeypatch, "world_attacks", "--limit", "1", "--budget", "200", "--out", str(tmp_path / "runs"),
                "--json", str(out))
    (row,) = json.loads(out.read_text())
    assert row["same_scene"] == (row["best"] != row["prompt"] and parse_prompt(row["best"]) == parse_prompt(row["prompt"]))
    assert 0 <= row["faithfulness_initial"] <= 1 and 0 <= row["faithfulness_best"] <= 1
    assert 0 <= row["same_scene_in_space"] <= row["accepted_in_space"] < row["space_size"]
    assert (tmp_path / "runs" / "00" / "result.json").is_file()
    assert "same scene (parser)" in capsys.readouterr().out


def test_meaning_check_prints_both_rules_side_by_side(tmp_path, monkeypatch, capsys):
    lines = [l for l in (ROOT / "benchmarks" / "data" / "meaning_pairs.tsv").read_text().splitlines()
             if l and not l.startswith("#")]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join(lines[17:23]) + "\n")  # 3 dev + 3 test pairs, both labels
    _run_script(monkeypatch, "meaning_check", "--pairs", str(pairs), "--show", "3")
    out = capsys.readouterr().out
    assert "score-cut rule (SENSE_MODE cut)" in out and "first-sense rule (SENSE_MODE first)" in out
    assert "chosen on dev among score-cut rule and cosine:" in out and "chosen on dev among first-sense rule:" in out
    assert "relation model (SENSE_MODE model)" in out and "chosen on dev among relation model:" in out
    assert "default in constraints.py (SENSE_MODE 'first')" in out


def test_meaning_check_benchmark_decides_as_the_constraint(monkeypatch):
    """The benchmark's figures for constraints.py's defaults are MeaningConstraint's own decisions."""
    import importlib.util

    from dpo_diff.constraints import STRICT, MeaningConstraint, readings, sense_score

    spec = importlib.util.spec_from_file_location("meaning_check", ROOT / "benchmarks" / "meaning_check.py")
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    pairs = [("a large red circle on the left", "a large crimson circle on the left"),
             ("a large red circle on the left", "a larger red circle on the left"),
             ("a green field with a red barn", "a green meadow with a red barn"),
             ("a red car parked by the river", "a red railcar parked by the river"),
             ("a bowl of soup on a wooden table", "a bowl of soup on a timber table")]
    for mode in ("first", "cut", "model"):
        checks = [MeaningConstraint(o, sense_mode=mode) for o, _ in pairs]
        cos = [c.similarity(r) for c, (_, r) in zip(checks, pairs)]
        senses = {STRICT: [sense_score(o, r, STRICT) for o, r in pairs], None: [sense_score(o, r) for o, r in pairs]}
        reads = [readings(o, r) for o, r in pairs]
        expected = [c(r) for c, (_, r) in zip(checks, pairs)]
        assert mc.default_decisions(cos, senses, reads, mode) == expected, mode
