"""Calibrate the attack's meaning check on the hand-labeled pairs in benchmarks/data/meaning_pairs.tsv.

    python benchmarks/meaning_check.py

For each check (the MiniLM cosine at several thresholds; the WordNet-sense rule; both), prints
false accepts (share of meaning-changing rewrites accepted) and false rejects (share of
meaning-keeping rewrites refused), on the DEV half (odd data lines), the TEST half (even lines)
and all. The default is chosen on DEV only: the check with FA <= 10 % and the fewest false
rejects (else the lowest FA + FR), then reported on TEST.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PAIRS = ROOT / "benchmarks" / "data" / "meaning_pairs.tsv"


def load(path: Path = PAIRS) -> list[tuple[str, str, int, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        original, rewrite, label, category = line.split("\t")
        rows.append((original, rewrite, int(label), category))
    return rows


def rates(decisions: list[bool], rows) -> tuple[float, float]:
    neg = [d for d, r in zip(decisions, rows) if r[2] == 0]
    pos = [d for d, r in zip(decisions, rows) if r[2] == 1]
    return (sum(neg) / len(neg) if neg else 0.0, sum(not d for d in pos) / len(pos) if pos else 0.0)


def features(rows, cache: str | None = None):
    import pickle

    if cache and Path(cache).is_file():
        return pickle.loads(Path(cache).read_bytes())
    from dpo_diff.constraints import MeaningConstraint, sense_score

    cos, sense = [], []
    for original, rewrite, _, _ in rows:
        check = MeaningConstraint(original, 0.0)
        cos.append(check.similarity(rewrite))
        sense.append(sense_score(original, rewrite))
    if cache:
        Path(cache).write_bytes(pickle.dumps((cos, sense)))
    return cos, sense


def _rule(r: float, t: float, t_uneven: float):
    """WordNet-sense rule: a WordNet synonym in context needs score >= r; a pair WordNet does not
    know (NaN) needs cosine >= t; uneven word counts (None) need cosine >= t_uneven; -inf refuses."""
    def decide(c, s):
        if s is None:
            return c >= t_uneven
        if s != s:  # NaN
            return c >= t
        return s >= r
    return decide


def checks():
    """name -> decide(cos, sense)"""
    out = {}
    for t in (0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95):
        out[f"minilm>={t}"] = (lambda t: lambda c, s: c >= t)(t)
    for r in (-1e9, -3.0, -2.4, -2.0, -1.5, -1.0, -0.5, 0.0):
        for t in (0.8, 0.85, 0.9, 0.95):
            out[f"rule score>={r:g}, else minilm>={t}"] = _rule(r, t, t)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default=str(PAIRS))
    ap.add_argument("--cache", help="keep the computed similarities in this file")
    ap.add_argument("--errors", help="print the chosen check's errors on this split (dev/test/all)")
    args = ap.parse_args(argv)
    rows = load(Path(args.pairs))
    cos, sense = features(rows, args.cache)
    dev = [i for i in range(len(rows)) if i % 2 == 0]
    test = [i for i in range(len(rows)) if i % 2 == 1]
    n0 = sum(r[2] == 0 for r in rows)
    print(f"{len(rows)} pairs ({len(rows) - n0} same meaning, {n0} changed); dev {len(dev)}, test {len(test)}")
    print(f"{'check':<42} {'FA dev':>7} {'FR dev':>7} {'FA test':>8} {'FR test':>8} {'FA all':>7} {'FR all':>7}")
    table = {}
    for name, decide in checks().items():
        d = [decide(c, s) for c, s in zip(cos, sense)]
        res = []
        for idx in (dev, test, list(range(len(rows)))):
            res.extend(rates([d[i] for i in idx], [rows[i] for i in idx]))
        table[name] = (res, d)
        print(f"{name:<42} " + " ".join(f"{x:>7.1%}" for x in res))
    ok = [k for k, (r, _) in table.items() if r[0] <= 0.10]
    chosen = min(ok, key=lambda k: (table[k][0][1], table[k][0][0])) if ok else min(table, key=lambda k: sum(table[k][0][:2]))
    r = table[chosen][0]
    print(f"\nchosen on dev: {chosen}  -> test FA {r[2]:.1%}, FR {r[3]:.1%}; all FA {r[4]:.1%}, FR {r[5]:.1%}")
    if args.errors:
        idx = {"dev": dev, "test": test}.get(args.errors, range(len(rows)))
        d = table[chosen][1]
        for i in idx:
            if d[i] != bool(rows[i][2]):
                s = sense[i]
                print(f"{'FA' if d[i] else 'FR'}  cos {cos[i]:.3f}  sense {s if s is None else round(s, 3)}  {rows[i][1]!r}  ({rows[i][3]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
