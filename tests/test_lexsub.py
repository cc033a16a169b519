"""benchmarks/lexsub.py: LS07 parsing and scoring, and the quick run on the trial set (CI)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LS07 = ROOT / ".." / "shared" / "data" / "ls07"


def _lexsub():
    spec = importlib.util.spec_from_file_location("lexsub", ROOT / "benchmarks" / "lexsub.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_parse_and_score(tmp_path):
    lexsub = _lexsub()
    (tmp_path / "lst_trial.gold").write_bytes(
        "bright.a 1 :: intelligent 3;clever 2;\nbright.a 2 :: luminous 2;na\xefve 1;\n".encode("latin-1")
    )
    (tmp_path / "lst_trial.preprocessed").write_text(
        "bright.a\t1\t3\the was a bright boy .\nbright.a\t2\t1\tthe bright light\nbright.a\t3\t1\tno gold here\n",
        encoding="latin-1",
    )
    insts = lexsub.load(tmp_path, "trial")
    assert [i["id"] for i in insts] == ["bright.a 1", "bright.a 2"]
    assert insts[0]["gold"] == {"intelligent": 3, "clever": 2} and insts[0]["tokens"][3] == "bright"
    assert "naïve" in insts[1]["gold"]
    assert lexsub._text(insts[0]) == ("he was a bright boy .", 9, 15)
    table = lexsub.score([(insts[0], ["clever", "smart"]), (insts[1], [])])
    assert table["all"]["coverage"] == 0.5 and table["all"]["precision"] == 0.5
    assert table["all"]["P@1"] == 0.5 and table["all"]["P@1cov"] == 1.0 and table["adj"]["n"] == 2


def test_missing_data_is_one_line(tmp_path, capsys):
    assert _lexsub().main(["--data", str(tmp_path / "nowhere"), "--quick"]) == 2
    assert "LS07 data not found" in capsys.readouterr().err


@pytest.mark.skipif(not (LS07 / "lst_trial.gold").is_file(), reason=f"LS07 data not found at {LS07}")
def test_quick_run_on_trial(capsys, tmp_path):
    import json

    lexsub = _lexsub()
    assert lexsub.main(["--quick", "--limit", "40", "--json", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    assert "LS07 trial" in out and "baseline" in out and "context" in out
    table = json.loads((tmp_path / "t.json").read_text())["trial"]
    assert table["context"]["all"]["n"] == 40 and table["context"]["all"]["coverage"] >= 0.6


@pytest.mark.skipif(not (LS07 / "lst_trial.gold").is_file(), reason=f"LS07 data not found at {LS07}")
def test_feature_caches_hold_each_candidate_once(tmp_path):
    """The single-word cache holds single words only, the multi-word one adds each multi-word lemma once
    (a cache built without --single-words used to hold them twice)."""
    lexsub = _lexsub()
    lexsub.MULTIWORD["on"] = True
    feats = lexsub._multiword_features(lexsub.data_dir(None), "trial", tmp_path / "s.pkl", tmp_path / "m.pkl", 12)
    single = lexsub._features(lexsub.data_dir(None), "trial", tmp_path / "s.pkl", 12)
    assert all(" " not in c for _, f in single for c, _ in f)
    assert all(len({c for c, _ in f}) == len(f) for _, f in feats)
    assert any(" " in c for _, f in feats for c, _ in f)
