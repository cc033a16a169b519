"""Ray fan-out on a local Ray instance with 2 CPU actors on the tiny preset: every prompt is
done once, an actor SIGKILLed mid-prompt is replaced and its prompt retried, and the driver
alone writes the store, so a rerun resumes as without Ray."""

import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dpo_diff.batch import load_prompts, run_batch
from dpo_diff.batch.distributed import ACTOR_NAME
from dpo_diff.cli import app

PROMPTS = ["a red car", "a blue dog on the left", "a small green tree", "a big yellow house",
           "a purple cat at the top", "a white boat on a lake"]
FAST = {"steps": 2, "budget": 40, "seeds": 1}


def _actor_processes() -> dict[int, str]:
    """pid -> process title of this machine's dpo-diff Ray actors (Ray titles them ray::<Class>[.<method>])."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes().decode(errors="ignore").replace("\0", " ")
        except OSError:
            continue
        if f"ray::{ACTOR_NAME}" in title:
            found[int(cmdline.parent.name)] = title.strip()
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds actor processes through /proc")
def test_two_actors_all_prompts_once_and_a_killed_actor_is_replaced(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS + PROMPTS[:2]) + "\n")  # duplicates are run once
    out = tmp_path / "run"
    events, killed = [], []

    def progress(status):
        if status.done >= 1 and not killed:  # SIGKILL an actor while it is running a prompt
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                busy = [pid for pid, title in _actor_processes().items() if f"{ACTOR_NAME}.run" in title]
                if busy:
                    os.kill(busy[0], signal.SIGKILL)
                    killed.append(busy[0])
                    return
                time.sleep(0.05)

    counts = run_batch(load_prompts(str(prompts)), out, "enhance", model="tiny", ray="auto", actors=2,
                       progress=progress, on_event=events.append, **FAST)
    assert killed, "no actor was seen running a prompt"
    assert counts == {"done": len(PROMPTS)}
    assert any("2 Ray actor(s) on CPU" in e for e in events)
    lost = [e for e in events if "lost" in e and "replaced" in e]
    assert len(lost) == 1
    db = sqlite3.connect(out / "results.sqlite")
    rows = db.execute("SELECT prompt, image_dir, best_loss FROM results").fetchall()
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert sorted(r[0] for r in rows) == sorted(PROMPTS)  # each prompt exactly once
    for _, image_dir, best_loss in rows:  # images written by the driver, from the actors' bytes
        assert best_loss is not None
        assert sorted(p.name for p in (out / image_dir).iterdir()) == ["best-seed-0.png", "initial-seed-0.png", "seed-0.png"]
    deadline = time.monotonic() + 30  # actors are gone when the run ends
    while _actor_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _actor_processes()

    # a rerun resumes: nothing left to do, no Ray started, nothing duplicated
    again = run_batch(load_prompts(str(prompts)), out, "enhance", model="tiny", ray="auto", actors=2, **FAST)
    assert again == counts


def test_ray_run_matches_a_run_without_ray(tmp_path):
    """Same prompts, same options: the actors score the user's prompt as this process does."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    records = load_prompts(str(_write(tmp_path, PROMPTS[:2])))
    run_batch(records, tmp_path / "here", "enhance", model="tiny", **FAST)
    run_batch(records, tmp_path / "ray", "enhance", model="tiny", ray="auto", actors=2, **FAST)

    def best(folder):
        db = sqlite3.connect(folder / "results.sqlite")
        try:
            return {p: (i, b) for p, i, b in db.execute("SELECT prompt, initial_loss, best_loss FROM results")}
        finally:
            db.close()

    here, there = best(tmp_path / "here"), best(tmp_path / "ray")
    assert here.keys() == there.keys()
    for prompt, (initial, best_loss) in there.items():
        assert initial == pytest.approx(here[prompt][0], abs=1e-4)  # same model, seeds, steps, guidance
        assert best_loss <= initial


def _write(tmp_path, lines):
    path = tmp_path / "p.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_without_ray_the_option_gets_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    res = CliRunner().invoke(app, ["run", str(_write(tmp_path, PROMPTS[:1])), "--model", "tiny", "--ray", "auto",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.output.strip() == "error: --ray needs Ray: pip install 'dpo-diff[ray]'"
    assert not (tmp_path / "o" / "results.sqlite").exists()


def test_bad_actor_count_is_refused(tmp_path):
    res = CliRunner().invoke(app, ["run", str(_write(tmp_path, PROMPTS[:1])), "--model", "tiny", "--ray", "auto",
                                   "--actors", "0", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--actors must be at least 1" in res.output


def test_cli_run_with_ray(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["run", str(_write(tmp_path, PROMPTS[:2])), "--model", "tiny", "--ray", "auto",
                                   "--actors", "1", "--steps", "2", "--budget", "40", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "1 Ray actor(s) on CPU" in res.output
    assert "2 prompts: 2 done" in res.output


def test_unreachable_cluster_gets_one_line_fast(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    import socket

    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    res = CliRunner().invoke(app, ["run", str(_write(tmp_path, PROMPTS[:1])), "--model", "tiny", "--ray",
                                   f"127.0.0.1:{port}", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in res.output
    assert time.monotonic() - started < 30  # Ray alone would retry for minutes
