"""The benchmark scripts run (quick mode), so they cannot rot. Figures are not asserted on time."""

import json
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gradient_cost_benchmark_quick(tmp_path, monkeypatch, capsys):
    out = tmp_path / "gradient_cost.json"
    monkeypatch.setattr(sys, "argv", ["gradient_cost.py", "--quick", "--json", str(out)])
    try:
        runpy.run_path(str(ROOT / "benchmarks" / "gradient_cost.py"), run_name="__main__")
    except SystemExit as exit_:
        assert exit_.code == 0
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
    monkeypatch.setattr(sys, "argv", ["world_study.py", "--study", "solvers", "--quick", "--seeds", "1", "--out", str(out)])
    try:
        runpy.run_path(str(ROOT / "benchmarks" / "world_study.py"), run_name="__main__")
    except SystemExit as exit_:
        assert exit_.code == 0
    report = json.loads((out / "compare.json").read_text())
    assert {s["solver"] for s in report["summary"]} == {"random", "hybrid"}
    assert all(s["faithfulness"] is not None for s in report["summary"])
    assert "judged faithfulness" in capsys.readouterr().out
