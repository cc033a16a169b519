"""Are two runs' results the same? ``python scripts/compare_results.py DIR_A DIR_B [NAME ...]``.

Compares ``result.json`` of each run folder (DIR_A/NAME vs DIR_B/NAME, or DIR_A vs DIR_B without
names) key by key, leaving out what may differ between identical runs: timings, and the
``objective`` and ``cost_unit`` texts added since older results were written. Prints one line per
run: identical, or the keys that differ. Exit status 1 when any differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

IGNORED = ("seconds", "objective", "cost_unit")


def load(folder: Path) -> dict:
    data = json.loads((folder / "result.json").read_text())
    for key in IGNORED:
        data.pop(key, None)
    for entry in data.get("history", []):
        entry.pop("seconds", None)
    return data


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[0])
        return 2
    a, b, names = Path(argv[0]), Path(argv[1]), argv[2:] or [""]
    differ = 0
    for name in names:
        x, y = load(a / name), load(b / name)
        keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
        differ += bool(keys)
        print(f"{name or b}: " + ("identical" if not keys else "different in " + ", ".join(keys)))
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
