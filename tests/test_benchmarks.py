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
