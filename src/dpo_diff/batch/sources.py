"""Prompt sources for batch runs: text, JSONL and CSV files, and Hugging Face datasets.

Every prompt keeps the row id it had in its source, empty rows are skipped, and repeated
prompts (after whitespace is folded) are kept once, at their first row.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DpoDiffError

TEXT_COLUMNS = ("prompt", "text", "caption", "Prompt", "sentence")


@dataclass(frozen=True)
class PromptRecord:
    source: str
    row_id: str
    text: str


def _pick_column(columns: list[str], column: str | None, where: str) -> str:
    if column is not None:
        if column not in columns:
            raise DpoDiffError(f"{where} has no column '{column}' (columns: {', '.join(columns[:12])})")
        return column
    for name in TEXT_COLUMNS:
        if name in columns:
            return name
    raise DpoDiffError(f"{where}: say which column holds the prompts with --column (columns: {', '.join(columns[:12])})")


def _read_file(path: Path, column: str | None) -> list[tuple[str, str]]:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DpoDiffError(f"prompt file '{path}' does not exist") from None
    except IsADirectoryError:
        raise DpoDiffError(f"prompt file '{path}' is a folder (a dataset saved with `datasets`? use --dataset)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DpoDiffError(f"cannot read prompt file '{path}': {getattr(err, 'strerror', None) or err}") from None
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DpoDiffError(f"{path}:{n} is not valid JSON: {err.msg}") from None
            if not isinstance(obj, dict):
                raise DpoDiffError(f"{path}:{n} is not a JSON object")
            col = _pick_column(list(obj), column, f"{path}:{n}")
            rows.append((str(obj.get("id", n)), str(obj.get(col) or "")))
        return rows
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(raw.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        col = _pick_column(list(reader.fieldnames or []), column, str(path))
        return [(str(row.get("id") or n), row.get(col) or "") for n, row in enumerate(reader, 1)]
    if column is not None:
        raise DpoDiffError(f"--column is for JSONL/CSV files and datasets, not the text file '{path}'")
    return [(str(n), line) for n, line in enumerate(raw.splitlines(), 1)]


def _read_dataset(name: str, split: str, column: str | None) -> list[tuple[str, str]]:
    try:
        import datasets
    except ImportError:
        raise DpoDiffError("--dataset needs the datasets library: pip install datasets") from None
    datasets.disable_progress_bars()
    try:
        if Path(name).is_dir():
            data = datasets.load_from_disk(name)
            if isinstance(data, datasets.DatasetDict):
                if split not in data:
                    raise DpoDiffError(f"dataset '{name}' has no split '{split}' (splits: {', '.join(data)})")
                data = data[split]
        else:
            data = datasets.load_dataset(name, split=split)
    except DpoDiffError:
        raise
    except Exception as err:  # offline hub, unknown name, bad split ...
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "")
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        hint = " (offline: HF_HUB_OFFLINE is set)" if offline else ""
        raise DpoDiffError(f"cannot load dataset '{name}' split '{split}'{hint}: {first[:200]}") from None
    col = _pick_column(list(data.column_names), column, f"dataset '{name}'")
    ids = data["id"] if "id" in data.column_names else range(len(data))
    return [(str(i), str(t or "")) for i, t in zip(ids, data[col])]


def load_prompts(
    path: str | None = None,
    dataset: str | None = None,
    split: str = "train",
    column: str | None = None,
    limit: int | None = None,
) -> list[PromptRecord]:
    """The prompts of a file or a dataset, deduplicated, empty rows skipped, in source order."""
    if (path is None) == (dataset is None):
        raise DpoDiffError("give a prompt file or --dataset, one of the two")
    rows = _read_file(Path(path), column) if path is not None else _read_dataset(dataset, split, column)
    source = Path(path).name if path is not None else f"{dataset}:{split}"
    seen: set[str] = set()
    records = []
    for row_id, text in rows:
        text = " ".join(str(text).split())
        if not text or text.lower() in seen:
            continue
        seen.add(text.lower())
        records.append(PromptRecord(source, row_id, text))
    if limit is not None:
        records = records[: max(0, limit)]
    if not records:
        raise DpoDiffError(f"no prompts in {source}")
    return records


def parse_filter(spec: str | None):
    """``"loss>0.85"`` -> a predicate on the initial loss (also >=, <, <=)."""
    if spec is None:
        return None
    import operator
    import re

    m = re.fullmatch(r"\s*loss\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+)\s*", spec)
    if not m:
        raise DpoDiffError(f"--filter '{spec}': write loss>0.85, loss<0.85, loss>=x or loss<=x")
    op = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}[m.group(1)]
    threshold = float(m.group(2))
    return lambda loss: op(loss, threshold)
