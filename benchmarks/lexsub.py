"""The WordNet synonym source on SemEval-2007 lexical substitution (LS07), old ranking vs in-context.

    python benchmarks/lexsub.py              # trial and test, both rankings, per part of speech
    python benchmarks/lexsub.py --quick      # trial set only (CI)
    python benchmarks/lexsub.py --tune       # choose weights and the cut on TRIAL (never on test)
    python benchmarks/lexsub.py --cache-dir /tmp/ls07cache               # the same figures; reruns in seconds
    python benchmarks/lexsub.py --tune --cache-dir /tmp/ls07cache --features 1,2,3,4,6,7,8,9,10,11,12
                                             # the library's WEIGHTS: fit these features (0, the
                                             # constant, always), L2 by cross-validated P@1 on trial
    python benchmarks/lexsub.py --tune-multiword --cache-dir /tmp/ls07cache  # the multi-word cut, on trial

A feature cache belongs to one version of the feature vector and of WordNet's candidates: delete it
when either changes (a cache with another number of features is refused; one with other candidates
is not noticed).

The data is looked up at ``../shared/data/ls07`` relative to the repository root (override with
``--data`` or ``$DPO_DIFF_LS07``); see that folder's README for the format.

Metrics (lemmas compared, lowercase; instances with at least one gold substitute):
  coverage  share of instances given any candidate
  precision share of all proposed candidates that an annotator wrote
  P@1       share of instances whose first candidate an annotator wrote (uncovered count as misses)
  P@1cov    the same over covered instances only

"baseline" is the frequency-based ranking (``wordnet_substitutes``: part of speech and senses
from WordNet corpus frequency, never from the sentence, at most 8 candidates); "context" is
``rank_substitutes`` (tagger + lemminflect + MiniLM ranking, cut and cap of the library defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "ls07"
POS_NAMES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}


def data_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get("DPO_DIFF_LS07") or DEFAULT_DATA)


def load(folder: Path, split: str, limit: int | None = None) -> list[dict]:
    """Instances with gold substitutes: tokens, index, lemma, pos, gold {substitute: count}."""
    gold: dict[str, dict[str, int]] = {}
    for line in (folder / f"lst_{split}.gold").read_text(encoding="latin-1").splitlines():
        if "::" not in line:
            continue
        head, subs = line.split("::", 1)
        key = " ".join(head.split())
        counts: dict[str, int] = {}
        for item in subs.split(";"):
            item = item.strip()
            if not item:
                continue
            name, _, n = item.rpartition(" ")
            if name and n.isdigit():
                counts[name.lower()] = counts.get(name.lower(), 0) + int(n)
        if counts:
            gold[key] = counts
    out = []
    for line in (folder / f"lst_{split}.preprocessed").read_text(encoding="latin-1").splitlines():
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        target, iid, index, sentence = parts[0], parts[1], int(parts[2]), parts[3]
        key = f"{target} {iid}"
        if key not in gold:
            continue
        lemma, _, pos = target.rpartition(".")
        out.append({"id": key, "lemma": lemma, "pos": pos, "tokens": sentence.split(" "), "index": index, "gold": gold[key]})
    return out[:limit] if limit else out


def _lemmas(word: str) -> set[str]:
    from lemminflect import getAllLemmas

    out = {word.lower()}
    for forms in getAllLemmas(word.lower()).values():
        out.update(forms)
    return out


def baseline(inst: dict) -> list[str]:
    from dpo_diff.spaces.wordnet import wordnet_substitutes

    word = inst["tokens"][inst["index"]]
    return [next((l for l in sorted(_lemmas(c)) if l in inst["gold"]), c.lower()) for c in wordnet_substitutes(word, "synonym")]


def _text(inst: dict) -> tuple[str, int, int]:
    toks = inst["tokens"]
    start = len(" ".join(toks[: inst["index"]])) + (1 if inst["index"] else 0)
    return " ".join(toks), start, start + len(toks[inst["index"]])


MULTIWORD = {"on": True}  # multi-word WordNet lemmas are candidates, as in build_space (--single-words: not)


def context(inst: dict, gold_pos: bool = False, **kw) -> list[str]:
    from dpo_diff.spaces.context import rank_substitutes

    kw.setdefault("single_words", not MULTIWORD["on"])
    text, start, end = _text(inst)
    extra = {"pos": inst["pos"], "lemma": inst["lemma"]} if gold_pos else {}
    ranked = rank_substitutes(text, start, end, "synonym", tokens=inst["tokens"], index=inst["index"], **extra, **kw)
    return [s.lemma.lower() for s in ranked]


def score(rows: list[tuple[dict, list[str]]]) -> dict[str, dict[str, float]]:
    by: dict[str, list] = defaultdict(list)
    for inst, cands in rows:
        by[POS_NAMES.get(inst["pos"], inst["pos"])].append((inst, cands))
        by["all"].append((inst, cands))
    table = {}
    for pos, items in by.items():
        n = len(items)
        covered = [c for _, c in items if c]
        proposed = sum(len(c) for c in covered)
        hits = sum(sum(x in i["gold"] for x in c) for i, c in items)
        p1 = sum(bool(c) and c[0] in i["gold"] for i, c in items)
        table[pos] = {
            "n": n,
            "coverage": len(covered) / n,
            "precision": hits / proposed if proposed else 0.0,
            "P@1": p1 / n,
            "P@1cov": p1 / len(covered) if covered else 0.0,
            "per_instance": proposed / len(covered) if covered else 0.0,
        }
    return table


def print_table(split: str, results: dict[str, dict]) -> None:
    print(f"\nLS07 {split}")
    print(f"{'method':<10} {'pos':<5} {'n':>5} {'coverage':>9} {'precision':>9} {'P@1':>6} {'P@1cov':>7} {'cands':>6}")
    for method, table in results.items():
        for pos in ("all", "noun", "verb", "adj", "adv"):
            if pos in table:
                t = table[pos]
                print(f"{method:<10} {pos:<5} {t['n']:>5} {t['coverage']:>9.1%} {t['precision']:>9.3f} "
                      f"{t['P@1']:>6.3f} {t['P@1cov']:>7.3f} {t['per_instance']:>6.2f}")


def from_features(feats: list, cap: int = 8, multiword_cut: float | None = None) -> list[tuple[dict, list[str]]]:
    """The context ranking recomputed from cached features with the library's WEIGHTS and cut."""
    import numpy as np

    from dpo_diff.spaces.context import MULTIWORD_THRESHOLD, SYNONYM_THRESHOLD, WEIGHTS

    w = np.asarray(WEIGHTS)
    size = next((len(v) for _, f in feats for _, v in f), len(w))
    if size != len(w):
        raise SystemExit(f"the cached features have {size} entries, WEIGHTS {len(w)}: a stale cache, delete it")
    rows = []
    for inst, f in _pruned(feats):  # the library's sense pruning
        if not MULTIWORD["on"]:
            f = [(c, v) for c, v in f if " " not in c]
        ranked = sorted(((float(v @ w), c) for c, v in f), reverse=True)
        multi = max(SYNONYM_THRESHOLD, MULTIWORD_THRESHOLD if multiword_cut is None else multiword_cut)
        rows.append((inst, [c for sc, c in ranked if sc >= (multi if " " in c else SYNONYM_THRESHOLD)][:cap]))
    return rows


def tune_multiword(feats: list) -> float:
    """The multi-word lemmas' cut, on TRIAL only, by the rule that chose SYNONYM_THRESHOLD: best
    precision keeping coverage >= 85 % at cap 8 (single-word candidates keep their cut)."""
    hits = sum(" " in c and c in i["gold"] for i, f in feats for c, _ in f)
    total = sum(" " in c for _, f in feats for c, _ in f)
    print(f"trial: {total} multi-word candidates, {hits} written by annotators")
    print(f"{'cut':>6} {'coverage':>9} {'precision':>9} {'P@1':>6} {'cands':>6}")
    options = []
    for cut in [x / 10 for x in range(-24, 21, 1)] + [99.0]:
        t = score(from_features(feats, multiword_cut=cut))["all"]
        options.append((cut, t))
        if cut * 2 == int(cut * 2):
            print(f"{cut:>6.1f} {t['coverage']:>9.1%} {t['precision']:>9.3f} {t['P@1']:>6.3f} {t['per_instance']:>6.2f}")
    ok = [o for o in options if o[1]["coverage"] >= 0.85]
    best = max(ok, key=lambda o: (o[1]["precision"], -o[0])) if ok else max(options, key=lambda o: o[1]["precision"])
    print(f"chosen on trial: MULTIWORD_THRESHOLD = {best[0]}")
    return best[0]


def run(split: str, folder: Path, limit: int | None, methods: list[str], cache_dir: Path | None = None) -> dict:
    insts = load(folder, split, limit)
    results = {}
    for method in methods:
        started = time.time()
        if method == "baseline":
            rows = [(i, baseline(i)) for i in insts]
        elif method == "context" and cache_dir is not None:
            single = cache_dir / f"{split}-{limit or 'all'}.pkl"
            if MULTIWORD["on"]:
                feats = _multiword_features(folder, split, single, cache_dir / f"{split}-{limit or 'all'}-multiword.pkl", limit)
            else:
                feats = _features(folder, split, single, limit)
            rows = from_features(feats)
        elif method == "context":
            rows = [(i, context(i)) for i in insts]
        elif method == "goldpos":
            rows = [(i, context(i, gold_pos=True)) for i in insts]
        else:
            raise SystemExit(f"unknown method {method}")
        results[method] = score(rows)
        results[method]["all"]["seconds"] = round(time.time() - started, 1)
    print_table(split, results)
    return results


def _features(folder: Path, split: str, cache: Path | None, limit: int | None = None) -> list:
    import pickle

    if cache and cache.is_file():
        return pickle.loads(cache.read_bytes())
    feats = []
    for inst in load(folder, split, limit):
        f: list = []
        # single words only, whatever MULTIWORD says: the multi-word lemmas are added by
        # _multiword_features (before, a cache built without --single-words held them twice)
        context(inst, threshold=-1e9, max_candidates=None, features=f, single_words=True)
        feats.append((inst, [(c.lower(), v) for c, v in f]))
    if cache:
        cache.write_bytes(pickle.dumps(feats))
    return feats


def _multiword_features(folder: Path, split: str, single: Path, cache: Path, limit: int | None = None) -> list:
    """The single-word candidates' features (``single``, computed if absent) plus the multi-word
    lemmas' (computed alone: a candidate's features do not depend on the others')."""
    import pickle

    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    base = _features(folder, split, single, limit)
    feats = []
    for inst, f in base:
        extra: list = []
        context(inst, threshold=-1e9, max_candidates=None, features=extra, single_words=False, only_multiword=True)
        feats.append((inst, f + [(c.lower(), v) for c, v in extra]))
    cache.write_bytes(pickle.dumps(feats))
    return feats


def order_sensitive(inst: dict) -> bool:
    """Whether the instance's candidates depended on NLTK's similar-to order before it was fixed
    (an adjective head with more than 8 satellites: which 8 were taken changed with the hash seed)."""
    from dpo_diff.spaces.context import _by_frequency, _pos_options, tag
    from dpo_diff.spaces.wordnet import load_wordnet

    word = inst["tokens"][inst["index"]]
    opts = _pos_options(word)
    if not opts:
        return False
    pos = tag(inst["tokens"])[inst["index"]] or _by_frequency(opts)
    pos = pos if pos in opts else _by_frequency(opts)
    return any(s.pos() == "a" and len(s.similar_tos()) > 8 for s in load_wordnet().synsets(opts[pos], pos=pos))


def refresh_order_sensitive(split: str, cache_dir: Path, limit: int | None = None) -> None:
    """Recompute, in both feature caches of ``split``, the instances :func:`order_sensitive` finds."""
    import pickle

    single = cache_dir / f"{split}-{limit or 'all'}.pkl"
    multi = cache_dir / f"{split}-{limit or 'all'}-multiword.pkl"
    caches = {p: pickle.loads(p.read_bytes()) for p in (single, multi) if p.is_file()}
    if not caches:
        return
    first = next(iter(caches.values()))
    todo = [k for k, (inst, _) in enumerate(first) if order_sensitive(inst)]
    print(f"{split}: recomputing the features of {len(todo)} of {len(first)} instances", file=sys.stderr)
    for k in todo:
        inst = first[k][0]
        f: list = []
        context(inst, threshold=-1e9, max_candidates=None, features=f, single_words=False)
        feats = [(c.lower(), v) for c, v in f]
        for path, cached in caches.items():
            cached[k] = (inst, feats if path == multi else [(c, v) for c, v in feats if " " not in c])
    for path, cached in caches.items():
        path.write_bytes(pickle.dumps(cached))


def fit_logistic(x, y, l2: float = 1.0, steps: int = 3000, lr: float = 0.5):
    """Plain L2-regularised logistic regression by gradient descent (features standardised)."""
    import numpy as np

    mu, sd = x[:, 1:].mean(0), x[:, 1:].std(0) + 1e-9
    z = np.concatenate([x[:, :1], (x[:, 1:] - mu) / sd], 1)
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w)))
        g = z.T @ (p - y) / len(y) + l2 * np.r_[0, w[1:]] / len(y)
        w -= lr * g
    # back to raw features: w_raw . x == w . z
    raw = np.r_[w[0] - (w[1:] * mu / sd).sum(), w[1:] / sd]
    return raw


def _pruned(feats: list) -> list:
    """The candidates the library ranks: its sense pruning applied (place = 1/f5 - 1, rank = exp(f7) - 1)."""
    import numpy as np

    from dpo_diff.spaces.context import keep_sense

    return [(i, [(c, v) for c, v in f if keep_sense(round(1 / v[5] - 1), round(float(np.expm1(v[7]))))]) for i, f in feats]


def _fit(feats: list, idx: list[int], l2: float):
    """Logistic regression on the features ``idx`` (0: the constant); the full-length weight vector."""
    import numpy as np

    x = np.array([v[idx] for _, f in feats for _, v in f])
    y = np.array([float(c in i["gold"]) for i, f in feats for c, _ in f])
    w = np.zeros(len(feats[0][1][0][1]) if feats and feats[0][1] else max(idx) + 1)
    w[idx] = fit_logistic(x, y, l2)
    return w


def cross_validated_p1(feats: list, idx: list[int], l2: float, folds: int = 5) -> float:
    """P@1 (no cut, no cap) of held-out lemmas, 5 folds of TRIAL by target lemma: chooses L2 and features
    without judging a fit on the instances it was fitted on."""
    import random

    keys = sorted({i["lemma"] + "." + i["pos"] for i, _ in feats})
    random.Random(0).shuffle(keys)
    fold = {k: n % folds for n, k in enumerate(keys)}
    hits = 0
    for k in range(folds):
        train = [(i, f) for i, f in feats if fold[i["lemma"] + "." + i["pos"]] != k and f]
        w = _fit(train, idx, l2)
        for i, f in feats:
            if fold[i["lemma"] + "." + i["pos"]] == k and f:
                hits += max(f, key=lambda cv: float(cv[1] @ w))[0] in i["gold"]
    return hits / len(feats)


def tune(folder: Path, cache: Path | None = None, features: list[int] | None = None) -> None:
    """Fit the weights (logistic regression, candidate written by an annotator or not) and choose
    the cut, on TRIAL only; prints WEIGHTS and SYNONYM_THRESHOLD to paste into spaces/context.py.
    The L2 strength is the one with the best cross-validated P@1 on trial (folds by target lemma);
    ``features`` (indices into the feature vector, 0 the constant) fits a subset, the rest weigh 0."""
    import numpy as np

    feats = _pruned(_features(folder, "trial", cache))
    n_features = len(next(v for _, f in feats for _, v in f))
    idx = sorted({0, *(features if features is not None else range(1, n_features))})
    y = np.array([float(c in i["gold"]) for i, f in feats for c, _ in f])
    print(f"trial: {len(feats)} instances, {len(y)} candidates, {int(y.sum())} written by annotators; features {idx}")
    cv = {}
    for l2 in (0.1, 1.0, 10.0, 100.0):
        cv[l2] = cross_validated_p1(feats, idx, l2)
        w = _fit(feats, idx, l2)
        p1 = sum(bool(f) and max(f, key=lambda c_v: float(c_v[1] @ w))[0] in i["gold"] for i, f in feats) / len(feats)
        print(f"l2 {l2:>6}: cross-validated P@1 {cv[l2]:.3f}, fitted P@1 {p1:.3f}")
    l2 = max(cv, key=lambda k: (round(cv[k], 6), -k))
    w = _fit(feats, idx, l2)
    ranked = [(i, sorted(((float(v @ w), c) for c, v in f), reverse=True)) for i, f in feats]
    print(f"l2 {l2} chosen\n{'cut':>6} {'cap':>4} {'coverage':>9} {'precision':>9} {'P@1':>6} {'cands':>6}")
    options = []
    for cut in [x / 10 for x in range(-40, 11, 2)]:
        for cap in (1, 2, 3, 4, 5, 8):
            rows = [(i, [c for sc, c in s if sc >= cut][:cap]) for i, s in ranked]
            t = score(rows)["all"]
            options.append((cut, cap, t))
            if cap in (3, 8):
                print(f"{cut:>6.1f} {cap:>4} {t['coverage']:>9.1%} {t['precision']:>9.3f} {t['P@1']:>6.3f} {t['per_instance']:>6.2f}")
    ok = [o for o in options if o[2]["coverage"] >= 0.85 and o[1] == 8]
    best = max(ok, key=lambda o: o[2]["precision"])
    print(f"\nchosen on trial (cap 8, coverage >= 85 %, best precision): cut {best[0]} -> "
          f"{json.dumps({k: round(v, 3) for k, v in best[2].items()})}")
    print(f"WEIGHTS = {tuple(round(float(a), 4) for a in w)}\nSYNONYM_THRESHOLD = {best[0]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="LS07 folder (default: ../shared/data/ls07 from the repository root, or $DPO_DIFF_LS07)")
    ap.add_argument("--quick", action="store_true", help="trial set only")
    ap.add_argument("--limit", type=int, help="first N instances of each split")
    ap.add_argument("--methods", default="baseline,context", help="baseline,context,goldpos (goldpos: annotators' POS and lemma)")
    ap.add_argument("--tune", action="store_true", help="choose weights and cut on the trial set")
    ap.add_argument("--json", help="write the tables here")
    ap.add_argument("--cache", help="with --tune: keep the trial features in this file")
    ap.add_argument("--features", help="with --tune: fit only these feature indices (comma-separated; 0, the "
                    "constant, always); the others weigh 0")
    ap.add_argument("--from-features", help="score a saved feature file (e.g. a subset of test) against the baseline")
    ap.add_argument("--refresh-order-sensitive", action="store_true",
                    help="with --cache-dir: first recompute the cached instances whose candidates depended on "
                    "NLTK's similar-to order (fixed since; see order_sensitive)")
    ap.add_argument("--single-words", action="store_true", help="leave multi-word WordNet lemmas out (the ranking before issue 9's item 3)")
    ap.add_argument("--tune-multiword", action="store_true", help="choose the multi-word lemmas' cut on the trial set")
    ap.add_argument("--cache-dir", help="keep each split's candidate features here (weight-independent) and "
                    "rank them with the library's weights and cut: same figures, reruns in seconds")
    args = ap.parse_args(argv)
    folder = data_dir(args.data)
    if not (folder / "lst_trial.gold").is_file():
        print(f"LS07 data not found at {folder} (use --data or $DPO_DIFF_LS07)", file=sys.stderr)
        return 2
    if args.tune:
        cache = Path(args.cache) if args.cache else (Path(args.cache_dir) / "trial-all.pkl" if args.cache_dir else None)
        tune(folder, cache, [int(x) for x in args.features.split(",")] if args.features else None)
        return 0
    if args.tune_multiword:
        cache_dir = Path(args.cache_dir) if args.cache_dir else None
        if cache_dir:
            cache_dir.mkdir(parents=True, exist_ok=True)
        single = cache_dir / "trial-all.pkl" if cache_dir else None
        tune_multiword(_multiword_features(folder, "trial", single, cache_dir / "trial-all-multiword.pkl" if cache_dir else None))
        return 0
    if args.from_features:
        import pickle

        feats = pickle.loads(Path(args.from_features).read_bytes())
        started = time.time()
        base = score([(i, baseline(i)) for i, _ in feats])
        base["all"]["seconds"] = round(time.time() - started, 1)
        results = {"baseline": base, "context": score(from_features(feats))}
        print_table(f"{args.from_features} ({len(feats)} instances)", results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        return 0
    MULTIWORD["on"] = not args.single_words
    if args.refresh_order_sensitive and args.cache_dir:
        for split in ["trial"] if args.quick else ["trial", "test"]:
            refresh_order_sensitive(split, Path(args.cache_dir), args.limit)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    cache_dir = Path(args.cache_dir) if args.cache_dir else None
    if cache_dir:
        cache_dir.mkdir(parents=True, exist_ok=True)
    out = {split: run(split, folder, args.limit, methods, cache_dir) for split in (["trial"] if args.quick else ["trial", "test"])}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
