"""Solver and space studies on the bundled world's held-out prompts (never used for tuning).

    python benchmarks/world_study.py --study solvers      # random / epo / gpo / hybrid at 3 budgets
    python benchmarks/world_study.py --study spaces       # antonym / nplib / antonym+nplib / synonym
    python benchmarks/world_study.py --study gpo-styles   # GPO as the authors released it vs our earlier details
    python benchmarks/world_study.py --study solvers --quick   # CI: 2 prompts, 1 budget

Prints the table (mean ± standard error over prompts; CLIP loss change on the search seeds and
on held-out seeds, the pixel judge's faithfulness of the best images on the held-out seeds) and
the paired comparison of every two solvers (or spaces): per-prompt wins on held-out loss, ties
apart, with a bootstrap interval. Writes compare.json / compare.md / compare.png.

    python benchmarks/world_study.py --study solvers --seeds 1 --search-seeds 3 --steps 10 \
        --budgets 840 --limit 20          # the study in the README
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dpo_diff import compare as comparison
from dpo_diff.engine import load
from dpo_diff.batch import load_prompts

HERE = Path(__file__).resolve().parent
STUDIES = {
    "solvers": {"solvers": ["random", "epo", "gpo", "hybrid"], "spaces": [None]},
    "spaces": {"solvers": ["hybrid"], "spaces": ["antonym", "nplib", "antonym+nplib", "synonym"]},
    "gpo-styles": {"solvers": ["gpo"], "spaces": [None], "styles": ["authors", "previous"]},
}


def run_styles(prompts, study, budgets, engine, **options) -> dict:
    """The same solver under each GPO style, relabelled ``gpo (style)``, summarized and paired together."""
    runs = []
    report = None
    for style in study["styles"]:
        report = comparison.compare(prompts, study["solvers"], budgets, study["spaces"], "enhance", engine,
                                    gpo_style=style, **options)
        for r in report["runs"]:
            r["solver"] = f"{r['solver']} ({style})"
        runs += report["runs"]
    solvers = [f"{so} ({st})" for st in study["styles"] for so in study["solvers"]]
    report["runs"] = runs
    report["summary"] = [comparison.summarize_cell(runs, sp, so, b, "enhance")
                         for sp in study["spaces"] for so in solvers for b in budgets]
    report["pairs"] = comparison.pair_table(runs, "enhance")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=sorted(STUDIES), default="solvers")
    parser.add_argument("--model", default=None, help="default: the bundled world")
    parser.add_argument("--prompts", default=str(HERE / "prompts" / "world_heldout.txt"))
    parser.add_argument("--budgets", default="800,1600,3200")
    parser.add_argument("--seeds", default="2", help="image seeds of the search")
    parser.add_argument("--eval-seeds", default="4", help="held-out image seeds (count or list)")
    parser.add_argument("--search-seeds", type=int, default=3, help="repeats of each search (solver RNG seeds)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's, 20)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--solvers", default=None, help="override the study's solvers")
    parser.add_argument("--quick", action="store_true", help="2 prompts, the smallest budget, random+hybrid")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    study = dict(STUDIES[args.study])
    budgets = [int(b) for b in args.budgets.split(",")]
    prompts = [r.text for r in load_prompts(args.prompts, limit=args.limit)]
    if args.solvers:
        study["solvers"] = args.solvers.split(",")
    if args.quick:
        prompts, budgets, args.search_seeds = prompts[:2], budgets[:1], 1
        study["solvers"] = study["solvers"][:1] + study["solvers"][-1:] if args.study == "solvers" else study["solvers"]
        study["spaces"] = study["spaces"][:2]
    engine = load(args.model)
    start = time.perf_counter()
    options = dict(
        seeds=args.seeds, steps=args.steps, eval_seeds=args.eval_seeds, search_seeds=args.search_seeds,
        progress=lambda d, t, what: print(f"  {d}/{t} {what} {time.perf_counter() - start:.0f} s", file=sys.stderr,
                                          flush=True) if d % 10 == 0 else None,
    )
    if "styles" in study:
        report = run_styles(prompts, study, budgets, engine, **options)
    else:
        report = comparison.compare(prompts, study["solvers"], budgets, study["spaces"], "enhance", engine, **options)
    out = Path(args.out or HERE / "results" / f"world_{args.study}{'_quick' if args.quick else ''}")
    paths = comparison.write(report, out)
    print(comparison.to_markdown(report))
    print(f"{len(prompts)} prompts, seeds {args.seeds}, held-out seeds {args.eval_seeds}, "
          f"search seeds {args.search_seeds}, steps {args.steps or engine.default_steps}, "
          f"{time.perf_counter() - start:.0f} s; wrote " + ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
