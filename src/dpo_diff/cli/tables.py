"""Tables a terminal of 80 columns shows whole: few columns, short headers, cells that fold.

The full figures (every column, standard deviations) are in the files the commands write
(CSV, Markdown, JSON); the terminal gets what a person reads first.
"""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table


def table(columns: list[str], title: str | None = None, caption: str | None = None, right: tuple[int, ...] = ()) -> Table:
    """A table whose cells fold instead of being cut, headers included."""
    view = Table(header_style="bold", title=title, caption=caption, caption_justify="left", pad_edge=False)
    for i, column in enumerate(columns):
        view.add_column(column, overflow="fold", justify="right" if i in right else "left")
    return view


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _signed(value, err=None) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" + (f" ±{err:.4f}" if err is not None else "")


def pairs_table(pairs: list[dict], label_budget: bool = False) -> Table:
    """Paired comparisons: A, B, prompts, wins / wins / ties, mean difference [95 % CI] (* excludes 0)."""
    columns = (["budget"] if label_budget else []) + ["A", "B", "n", "A/B/tie", "A - B [95 % CI]"]
    view = table(columns, caption="A - B: mean per-prompt difference, positive: A better; * the interval excludes 0",
                 right=tuple(range(len(columns) - 3, len(columns))))
    for p in pairs:
        star = " *" if p["significant"] else ""
        row = ([str(p["budget"])] if label_budget else []) + [
            escape(str(p["a"])), escape(str(p["b"])), str(p["n"]), f"{p['a_wins']}/{p['b_wins']}/{p['ties']}",
            f"{p['mean_difference']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}]{star}",
        ]
        view.add_row(*row)
    return view


def compare_table(report: dict, better: str) -> Table:
    """compare's summary: per (space, solver, budget), the held-out change and judge (search seeds' if none)."""
    held = any(s.get("held_out_change") is not None for s in report["summary"])
    spaces = len({s["space"] for s in report["summary"]}) > 1
    columns = (["space"] if spaces else []) + ["solver", "budget", "n", "change" + (" held-out" if held else ""),
                                               "improved", "judged"]
    where = "held-out seeds" if held else "search seeds"
    view = table(columns, caption=f"change: mean loss change on the {where}, in the task's direction (positive: "
                 f"better; the loss: {better} is the goal); judged: the world judge, initial -> best",
                 right=tuple(range(len(columns) - 5, len(columns))))
    for s in report["summary"]:
        if held:
            change, err, improved = s.get("held_out_change"), s.get("held_out_change_sem"), s.get("held_out_improved")
            f0, f1 = s.get("held_out_initial_faithfulness"), s.get("held_out_faithfulness")
        else:
            change, err, improved = s.get("change"), s.get("change_sem"), None
            f0, f1 = s.get("initial_faithfulness"), s.get("faithfulness")
        judged = "-" if f1 is None else f"{_pct(f0)} -> {_pct(f1)}"
        row = ([escape(str(s["space"]))] if spaces else []) + [
            escape(str(s["solver"])), str(s["budget"]), str(s["prompts"]), _signed(change, err), _pct(improved), judged]
        view.add_row(*row)
    return view


def evaluate_tables(rows: list[dict]) -> list[Table]:
    """evaluate's summary: the search seeds' table, then the held-out one (the figures to trust)."""
    sources = len({r["source"] for r in rows}) > 1
    tasks = len({r["task"] for r in rows}) > 1
    first = (["run", "solver"] + (["source"] if sources else []) + (["task"] if tasks else [])
             + ["n", "loss initial -> best", "change", "improved", "cost"])
    search = table(first, title="search seeds",
                   caption="change: in the task's direction (positive: better); improved: share of prompts (attack: "
                           "broken), not counting those the world judge flags; cost: denoiser-pass equivalents per prompt",
                   right=tuple(range(len(first) - 5, len(first))))
    for r in rows:
        search.add_row(*([escape(r["run"]), escape(str(r["solver"]))] + ([escape(r["source"])] if sources else [])
                         + ([r["task"]] if tasks else [])
                         + [str(r["prompts"]), f"{r['initial_mean']:.4f} -> {r['best_mean']:.4f}",
                            _signed(r["change_mean"]), _pct(r["share"]), f"{r['cost_mean']:.0f}"]))
    out = [search]
    held_rows = [r for r in rows if r.get("held_out_change_mean") is not None]
    if held_rows:
        second = ["run"] + (["source"] if sources else []) + ["n", "change", "improved", "flagged", "judged"]
        held = table(second, title="held-out seeds (the figures to trust)",
                     caption="flagged: prompts whose enhanced pictures the world judge reads as less faithful; "
                             "judged: its faithfulness, initial -> best",
                     right=tuple(range(len(second) - 5, len(second))))
        for r in held_rows:
            judged = "-" if r.get("held_out_best_faithfulness") is None else (
                f"{_pct(r['held_out_initial_faithfulness'])} -> {_pct(r['held_out_best_faithfulness'])}")
            held.add_row(*([escape(r["run"])] + ([escape(r["source"])] if sources else [])
                           + [str(r["held_out_prompts"]), _signed(r["held_out_change_mean"], r["held_out_change_sem"]),
                              _pct(r["held_out_share"]), str(r.get("held_out_flagged") or 0), judged]))
        out.append(held)
    return out
