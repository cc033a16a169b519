"""Batch runs: prompt sources, the resumable store (SIGKILL included), evaluation, report."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dpo_diff.batch import ResultStore, load_prompts, run_batch
from dpo_diff.cli import app
from dpo_diff.errors import DpoDiffError

runner = CliRunner()
FAST = {"steps": 4, "budget": 40, "iterations": 2}
PROMPTS = [
    "a red car parked on a quiet street", "a blue boat on a calm lake", "a large dog running in a green park",
    "an old house with a dark roof", "a small bird on a tall tree", "a white cat sleeping on a soft bed",
    "a yellow flower in a glass vase", "a busy street at night", "a quiet beach with clear water",
    "a big red apple on a wooden table", "a young woman reading a book", "a black horse in a wide field",
    "a tall building under a gray sky", "a little boy playing with a ball", "a bright kitchen with white walls",
    "a cold mountain covered in snow", "a green frog on a wet leaf", "a brown bear near a fast river",
    "a warm cup of coffee on a desk", "a fast train crossing a bridge",
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_text_file_dedup_skip_empty_and_row_ids(tmp_path):
    path = write(tmp_path / "p.txt", "a red car\n\n  a  red car \nA red car\na blue boat\n")
    records = load_prompts(str(path))
    assert [(r.row_id, r.text) for r in records] == [("1", "a red car"), ("5", "a blue boat")]
    assert load_prompts(str(path), limit=1)[0].text == "a red car"


def test_jsonl_and_csv_columns(tmp_path):
    jsonl = write(tmp_path / "p.jsonl", '{"id": "x1", "caption": "a red car"}\n{"id": "x2", "caption": "a cat"}\n')
    assert [(r.row_id, r.text) for r in load_prompts(str(jsonl))] == [("x1", "a red car"), ("x2", "a cat")]
    csv_path = write(tmp_path / "p.csv", "id,sentence,other\n7,a red car,z\n8,,z\n9,a dog,z\n")
    assert [(r.row_id, r.text) for r in load_prompts(str(csv_path), column="sentence")] == [("7", "a red car"), ("9", "a dog")]
    with pytest.raises(DpoDiffError, match="no column 'prompt_text'"):
        load_prompts(str(csv_path), column="prompt_text")


def test_local_dataset_saved_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "ds"
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"id": [10, 11], "Prompt": ["a red car", "a cat"]})}).save_to_disk(str(folder))
    records = load_prompts(dataset=str(folder), split="test")
    assert [(r.source, r.row_id, r.text) for r in records] == [(f"{folder}:test", "10", "a red car"), (f"{folder}:test", "11", "a cat")]
    with pytest.raises(DpoDiffError, match="no split 'train'"):
        load_prompts(dataset=str(folder), split="train")


BAD_SOURCES = {
    "missing file": (["run", "no/such/prompts.txt"], "does not exist"),
    "empty file": (["run", "EMPTY"], "no prompts"),
    "unknown column": (["run", "CSV", "--column", "nope"], "no column 'nope'"),
    "offline hub dataset": (["run", "--dataset", "poloclub/diffusiondb", "--split", "train"], "cannot load dataset"),
    "bad filter": (["run", "CSV", "--filter", "clip>3"], "--filter"),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_bad_sources_get_one_clear_line(case, tmp_path):
    args, expected = BAD_SOURCES[case]
    empty = write(tmp_path / "empty.txt", "\n  \n")
    csv_path = write(tmp_path / "p.csv", "prompt\na red car\n")
    args = [str(empty) if a == "EMPTY" else str(csv_path) if a == "CSV" else a for a in args]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out"), "--steps", "4", "--budget", "40"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert expected in lines[0]


def test_resume_skips_finished_and_refuses_another_configuration(engine, tmp_path):
    records = load_prompts(str(write(tmp_path / "p.txt", "\n".join(PROMPTS[:3]) + "\nun café noir\n")))
    counts = run_batch(records[:2], tmp_path / "out", "enhance", model=engine, **FAST)
    assert counts == {"done": 2}
    counts = run_batch(records, tmp_path / "out", "enhance", model=engine, **FAST)
    assert counts == {"done": 3, "refused": 1}
    with pytest.raises(DpoDiffError, match="an 'enhance' run, not 'attack'"):
        run_batch(records, tmp_path / "out", "attack", model=engine, **FAST)
    with pytest.raises(DpoDiffError, match="solver"):
        run_batch(records, tmp_path / "out", "enhance", model=engine, **{**FAST, "solver": "epo"})


def test_hard_prompt_filter_uses_the_initial_loss(engine, tmp_path):
    records = load_prompts(str(write(tmp_path / "p.txt", "\n".join(PROMPTS[:4]))))
    run_batch(records, tmp_path / "all", "enhance", model=engine, **FAST)
    store = ResultStore(tmp_path / "all")
    losses = sorted(r["initial_loss"] for r in store.rows())
    store.close()
    cut = (losses[1] + losses[2]) / 2
    counts = run_batch(records, tmp_path / "hard", "enhance", model=engine, filter=f"loss>{cut:.6f}", **FAST)
    assert counts == {"done": 2, "filtered": 2}


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_twice_then_resume_gives_exactly_all_results(tmp_path):
    """The issue's acceptance run: 20 prompts, killed twice with SIGKILL, resumed, 20 results."""
    prompts = write(tmp_path / "prompts.txt", "\n".join(PROMPTS))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dpo_diff", "run", str(prompts), "--out", str(out),
           "--steps", "4", "--budget", "40", "--iterations", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    db = out / "results.sqlite"
    for kill_after in (3, 9):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 240
        while _count(db) < kill_after and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 0 < _count(db) < 20
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        prompts_stored = [r[0] for r in conn.execute("SELECT prompt FROM results")]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sorted(prompts_stored) == sorted(PROMPTS)
    store = ResultStore(out)
    for row in store.rows():
        data = json.loads(row["result_json"])
        assert all((out / row["image_dir"] / name).is_file() for name in data["images"])
    store.close()


@pytest.fixture
def finished_run(engine, tmp_path):
    records = load_prompts(str(write(tmp_path / "p.txt", "\n".join(PROMPTS[:4]) + '\na <b>bold</b> & "quoted" dog\n')))
    run_batch(records, tmp_path / "run", "enhance", model=engine, **{**FAST, "budget": 80})
    return tmp_path / "run"


def test_evaluate_table_csv_markdown_and_plots(finished_run):
    result = runner.invoke(app, ["evaluate", str(finished_run)])
    assert result.exit_code == 0, result.output
    assert "evaluation.csv" in result.output and "hybrid" in result.output
    csv_text = (finished_run / "evaluation.csv").read_text().splitlines()
    assert csv_text[0].startswith("run,solver,source,task,prompts,initial_mean")
    assert len(csv_text) == 2 and csv_text[1].startswith("run,hybrid,p.txt,enhance,5,")
    assert "| run | solver |" in (finished_run / "evaluation.md").read_text()
    for name in ("loss_before_after.png", "loss_vs_cost.png"):
        assert (finished_run / name).stat().st_size > 1000


def test_rescore_with_another_clip_and_missing_extra(finished_run, engine, tmp_path):
    clip_dir = tmp_path / "clip"
    engine.scorer.model.save_pretrained(clip_dir)
    engine.scorer.tokenizer.save_pretrained(clip_dir)
    from transformers import CLIPImageProcessor

    CLIPImageProcessor(crop_size={"height": 32, "width": 32}, size={"shortest_edge": 32}).save_pretrained(clip_dir)
    result = runner.invoke(app, ["evaluate", str(finished_run), "--rescore", f"clip:{clip_dir}"])
    assert result.exit_code == 0, result.output
    data = json.loads((finished_run / "rescore-clip.json").read_text())
    assert data["prompts"] == 5
    # our own scorer, re-applied to the stored (8-bit) images, gives back the stored losses
    store = ResultStore(finished_run)
    stored = {r["prompt"]: r["initial_loss"] for r in store.rows()}
    store.close()
    for item in data["per_prompt"]:
        assert abs(item["initial"] - stored[item["prompt"]]) < 0.01
    result = runner.invoke(app, ["evaluate", str(finished_run), "--rescore", "imagereward"])
    assert result.exit_code != 0 and "pip install 'dpo-diff[scorers]'" in result.output


def test_evaluate_and_report_on_a_folder_without_results(tmp_path):
    for command in ("evaluate", "report"):
        result = runner.invoke(app, [command, str(tmp_path)])
        assert result.exit_code != 0 and "holds no batch results" in result.output


def test_report_renders_in_a_headless_browser(finished_run):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless browser installed (Debian: apt-get install chromium); .ci/run installs one")
    result = runner.invoke(app, ["report", str(finished_run)])
    assert result.exit_code == 0, result.output
    page = finished_run / "report.html"
    text = page.read_text()
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;" in text
    assert "http://" not in text and "https://" not in text  # no CDN
    profile = finished_run.parent / "chromium-profile"
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    # 5 prompts x 1 seed image pair + 2 plots, all loaded (naturalWidth > 0) by the browser
    assert 'data-images-loaded="7/7"' in dom
    assert dom.count("<tr data-change=") == 5
    assert "<table id=\"summary\">" in dom
