"""Meaning-preserving attacks on the bundled world: 12 prompts in common words, hybrid solver.

    python benchmarks/world_attacks.py                    # 12 attacks, budget 3200, one table
    python benchmarks/world_attacks.py --limit 1 --budget 800   # a quick look

Each prompt is attacked as ``dpo-diff attack PROMPT --model world --solver hybrid`` would (the
Python API, the model loaded once). For the best rewrite the table gives whether the world's
caption parser (``dpo_diff.world.parse``) reads it as the same scene as the prompt (a rewrite in
words the world does not know, a comparative or a wrong sense is not), the pixel judge's
faithfulness of the initial and the best prompt's pictures on the held-out seeds (the search
never saw them), the meaning check's similarity and sense score, the CLIP loss on the held-out seeds, and, over the
whole searched space, how many rewrites the meaning check accepts and how many of those the parser
reads as the same scene (the valid attacks the search could have found). The world's rare synonyms (crimson, reddish, violet, tiny, minute, vast, great,
centre, blurred, fuzzy, hazy) are what a valid attack should find.

The attack's space is what ``dpo-diff attack`` searches by default: WordNet synonyms that the
meaning check accepts alone and that the world knows (its caption vocabulary, ``--vocabulary
auto``). ``--vocabulary none`` runs the same attacks without the vocabulary (words the world never
saw, e.g. sizable, foursquare, underside, let through).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PROMPTS = (
    "a large red circle on the left",
    "a small purple square at the top",
    "a large blue triangle in the center",
    "a small red square on the right",
    "a large purple circle at the bottom",
    "a small green circle in the center",
    "a large yellow square on the left",
    "a small orange triangle at the top",
    "a large pink triangle on the right",
    "a small black circle at the bottom",
    "a blurry picture of a small red circle in the center",
    "a small red circle on the left and a large purple square on the right",
)


def changed_words(prompt: str, rewrite: str) -> str:
    import difflib

    a, b = prompt.split(), rewrite.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if op != "equal":
            out.append(f"{' '.join(a[i1:i2]) or '-'} -> {' '.join(b[j1:j2]) or '-'}")
    return "; ".join(out) or "(none)"


def accepted_rewrites(space, prompt: str, scene, limit: int = 5000) -> tuple[int, int] | None:
    """(rewrites the meaning check accepts, those of them the parser reads as the same scene) over
    the whole searched space; None when it has more than ``limit`` choices."""
    import itertools

    from dpo_diff.constraints import MeaningConstraint
    from dpo_diff.world.parse import parse_prompt

    if space.size > limit:
        return None
    check = MeaningConstraint(prompt)
    accepted = same = 0
    for choice in itertools.product(*(range(n) for n in space.sizes)):
        if choice == space.initial_choice:
            continue
        text = space.render(choice)[0]
        if check(text):
            accepted += 1
            same += parse_prompt(text) == scene
    return accepted, same


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=3200, help="UNet-pass equivalents per attack (default 3200)")
    ap.add_argument("--seed", type=int, default=0, help="search seed")
    ap.add_argument("--limit", type=int, help="first N prompts")
    ap.add_argument("--out", default="runs/world_attacks", help="one folder per attack (result.json, images)")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--sense-mode", choices=("first", "cut", "model"),
                    help="the meaning check's sense rule (default: dpo_diff.constraints.SENSE_MODE, 'first'; "
                         "'cut' is the previous default, 'model' the relation model)")
    ap.add_argument("--vocabulary", default="auto", help="auto (the world's caption words, default) | none | PATH")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import dpo_diff.constraints

    if args.sense_mode:  # every MeaningConstraint made from here on (the attack's and the count's) uses it
        dpo_diff.constraints.SENSE_MODE = args.sense_mode

    import warnings

    warnings.filterwarnings("ignore")
    import dpo_diff
    from dpo_diff.world.parse import parse_prompt

    engine = dpo_diff.load("world", device="cpu")
    rows = []
    started = time.time()
    for n, prompt in enumerate(PROMPTS[: args.limit] if args.limit else PROMPTS):
        t0 = time.time()
        result = dpo_diff.attack(prompt, model=engine, solver="hybrid", budget=args.budget, seed=args.seed,
                                 vocabulary=args.vocabulary, out=str(Path(args.out) / f"{n:02d}"), overwrite=True)
        d = result.to_dict()
        best = d["best"]["prompt"]
        scene = parse_prompt(prompt)
        held = d["held_out"] or {}
        meaning = d.get("meaning") or {}
        in_space = accepted_rewrites(result.space, prompt, scene)
        rows.append({
            "space_size": result.space.size,
            "accepted_in_space": None if in_space is None else in_space[0],
            "same_scene_in_space": None if in_space is None else in_space[1],
            "prompt": prompt,
            "best": best,
            "changed": changed_words(prompt, best),
            "same_scene": best != prompt and scene is not None and parse_prompt(best) == scene,
            "unchanged": best == prompt,
            "faithfulness_initial": held.get("initial", {}).get("faithfulness"),
            "faithfulness_best": held.get("best", {}).get("faithfulness"),
            "loss_initial": held.get("initial", {}).get("loss"),
            "loss_best": held.get("best", {}).get("loss"),
            "similarity": meaning.get("similarity"),
            "sense": meaning.get("sense"),
            "held_out_seeds": held.get("seeds"),
            "seconds": round(time.time() - t0, 1),
        })
        print(f"[{n + 1}] {prompt} -> {best} ({rows[-1]['seconds']} s)", file=sys.stderr, flush=True)

    def pct(x):
        return "-" if x is None else f"{100 * x:.0f} %"

    print(f"\nworld attacks: hybrid, budget {args.budget}, search seed {args.seed}, "
          f"meaning check: sense rule '{dpo_diff.constraints.SENSE_MODE}', vocabulary '{args.vocabulary}', "
          f"held-out seeds {rows[0]['held_out_seeds'] if rows else '-'}; {time.time() - started:.0f} s in all\n")
    print("| prompt | best rewrite (changed words) | same scene (parser) | faithfulness held-out, initial -> best "
          "| CLIP loss held-out, initial -> best | similarity | sense score | space: accepted / same scene |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        same = "unchanged" if r["unchanged"] else ("yes" if r["same_scene"] else "no")
        sense = r["sense"] if isinstance(r["sense"], str) or r["sense"] is None else f"{r['sense']:.2f}"
        sim = "-" if r["similarity"] is None else f"{r['similarity']:.3f}"
        print(f"| {r['prompt']} | {r['best']} ({r['changed']}) | {same} | {pct(r['faithfulness_initial'])} -> "
              f"{pct(r['faithfulness_best'])} | {r['loss_initial']:.3f} -> {r['loss_best']:.3f} | {sim} | {sense} | "
              f"{r['accepted_in_space']} / {r['same_scene_in_space']} of {r['space_size']} |")
    valid = [r for r in rows if r["same_scene"]]
    changed = [r for r in rows if not r["unchanged"]]

    def mean(key, items):
        vals = [r[key] for r in items if r[key] is not None]
        return sum(vals) / len(vals) if vals else None

    print(f"\n{len(changed)} of {len(rows)} attacks changed the prompt; the parser reads {len(valid)} of them as the "
          f"same scene.")
    counted = [r for r in rows if r["accepted_in_space"] is not None]
    print(f"over the searched spaces, the meaning check accepts {sum(r['accepted_in_space'] for r in counted)} rewrites; "
          f"the parser reads {sum(r['same_scene_in_space'] for r in counted)} of them as the same scene "
          f"({sum(r['same_scene_in_space'] > 0 for r in counted)} of {len(counted)} prompts have at least one).")
    for label, items in (("all", rows), ("same scene", valid)):
        if items:
            print(f"judged faithfulness on held-out seeds, {label} ({len(items)}): "
                  f"{pct(mean('faithfulness_initial', items))} -> {pct(mean('faithfulness_best', items))}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
