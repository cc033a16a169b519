"""Prompt sources for batch runs: text, JSONL and CSV files, and Hugging Face datasets.

Every prompt keeps the row id it had in its source, empty rows are skipped, and repeated
prompts (after whitespace is folded) are kept once, at their first row.

Hostile or careless files: a UTF-8 byte-order mark is accepted in every format; a JSONL or
dataset value that is not a string (a list, an object, a number, true) and a prompt longer
than :data:`MAX_PROMPT_CHARS` are kept as *refused* rows with their reason (never turned
into text and optimized); rows of a JSONL/CSV file or dataset without a prompt are counted
(:attr:`PromptList.empty_rows`) so the caller can report them. Blank lines of a text file
are not rows.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DpoDiffError

TEXT_COLUMNS = ("prompt", "text", "caption", "Prompt", "sentence")
MAX_PROMPT_CHARS = 2000  # longer rows are refused: a text encoder reads ~77 tokens anyway


@dataclass(frozen=True)
class PromptRecord:
    """One row of a prompt source. ``refusal``, when set, says why the row is not run."""

    source: str
    row_id: str
    text: str
    refusal: str | None = None


class PromptList(list):
    """The records of a source (a list), with the ids of the rows that had no prompt."""

    def __init__(self, records: list[PromptRecord], empty_rows: list[str] | None = None,
                 skipped: list[str] | None = None):
        super().__init__(records)
        self.empty_rows: list[str] = list(empty_rows or [])
        self.skipped: list[str] = list(skipped or [])  # lines of a text file that are not prompts, and why

    def notes(self) -> list[str]:
        """One line per kind of row that was not read as a prompt."""
        return [*self.skipped, *([self.empty_note()] if self.empty_note() else [])]

    def empty_note(self) -> str | None:
        """One line about the rows without a prompt, or None when there were none."""
        if not self.empty_rows:
            return None
        shown = ", ".join(self.empty_rows[:8]) + (", ..." if len(self.empty_rows) > 8 else "")
        n = len(self.empty_rows)
        return f"{n} row{'s' if n != 1 else ''} without a prompt skipped (row{'s' if n != 1 else ''} {shown})"


def _pick_column(columns: list[str], column: str | None, where: str) -> str:
    if column is not None:
        if column not in columns:
            raise DpoDiffError(f"{where} has no column '{column}' (columns: {', '.join(columns[:12])})")
        return column
    for name in TEXT_COLUMNS:
        if name in columns:
            return name
    raise DpoDiffError(f"{where}: say which column holds the prompts with --column (columns: {', '.join(columns[:12])})")


def _read_file(path: Path, column: str | None) -> list[tuple[str, object]]:
    """(row id, value) of each row; blank lines of a text file are not rows."""
    try:
        raw = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first prompt
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
            row_id = obj.get("id", n)
            rows.append((str(row_id) if isinstance(row_id, (str, int)) else str(n), obj.get(col)))
        return rows
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(raw.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        col = _pick_column(list(reader.fieldnames or []), column, str(path))
        # a short row has no value (None) in the prompt column: it is counted as a row without a prompt
        return [(str(row.get("id") or n), row.get(col)) for n, row in enumerate(reader, 1)]
    if column is not None:
        raise DpoDiffError(f"--column is for JSONL/CSV files and datasets, not the text file '{path}'")
    return [(str(n), line) for n, line in enumerate(raw.splitlines(), 1) if line.strip()]


def _text_lines(rows: list[tuple[str, object]]) -> tuple[list[tuple[str, object]], list[str]]:
    """A text file's prompt lines: ``#`` comment lines and a lone header line ("prompt") are not prompts."""
    notes = []
    comments = [n for n, line in rows if str(line).lstrip().startswith("#")]
    rows = [(n, line) for n, line in rows if not str(line).lstrip().startswith("#")]
    if comments:
        s = "s" if len(comments) != 1 else ""
        notes.append(f"{len(comments)} comment line{s} (#) skipped (line{s} {', '.join(comments[:8])})")
    if len(rows) > 1 and str(rows[0][1]).strip().lower() in TEXT_COLUMNS:
        notes.append(f"line {rows[0][0]} '{str(rows[0][1]).strip()}' read as a header, not a prompt: skipped")
        rows = rows[1:]
    return rows, notes


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
    return [(str(i), t) for i, t in zip(ids, data[col])]


def _describe(value: object) -> str:
    """A short, safe description of a non-string value: its JSON type and its start."""
    kind = {list: "a list", dict: "an object", bool: "true/false", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
    try:
        preview = json.dumps(value, default=str)
    except (TypeError, ValueError, RecursionError):
        preview = repr(value)
    return f"{kind} ({preview[:40]}{'...' if len(preview) > 40 else ''})"


def _record(source: str, row_id: str, value: object) -> PromptRecord | None:
    """The record of one row: None without a prompt, a refused record for a bad value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        what = _describe(value)
        return PromptRecord(
            source, row_id, f"[row {row_id}: {what}]",
            refusal=f"row {row_id}: the prompt is {what}, not a string: write it as text",
        )
    text = " ".join(value.split())
    if len(text) > MAX_PROMPT_CHARS:
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        return PromptRecord(  # the stored key is short: a 5 MB line must not become a 5 MB row
            source, row_id, f"{text[:80]}... [{len(text)} characters, sha1 {digest}]",
            refusal=f"row {row_id}: the prompt is {len(text):,} characters, more than the {MAX_PROMPT_CHARS:,} "
            "a prompt may have: shorten it",
        )
    return PromptRecord(source, row_id, text)


def load_prompts(
    path: str | None = None,
    dataset: str | None = None,
    split: str = "train",
    column: str | None = None,
    limit: int | None = None,
) -> PromptList:
    """The prompts of a file or a dataset, deduplicated, empty rows skipped, in source order.

    Rows that cannot be run (not a string, too long) come back refused (see module doc);
    the ids of rows without a prompt are in the result's ``empty_rows``.
    """
    if (path is None) == (dataset is None):
        raise DpoDiffError("give a prompt file or --dataset, one of the two")
    rows = _read_file(Path(path), column) if path is not None else _read_dataset(dataset, split, column)
    skipped: list[str] = []
    if path is not None and Path(path).suffix.lower() not in (".jsonl", ".ndjson", ".csv", ".tsv"):
        rows, skipped = _text_lines(rows)
    source = Path(path).name if path is not None else f"{dataset}:{split}"
    seen: set[str] = set()
    records, empty = [], []
    for row_id, value in rows:
        record = _record(source, row_id, value)
        if record is None:
            empty.append(row_id)
            continue
        if record.text.lower() in seen:
            continue
        seen.add(record.text.lower())
        records.append(record)
    if limit is not None:
        records = records[: max(0, limit)]
    result = PromptList(records, empty, skipped)
    if not records:
        notes = "; ".join(result.notes())
        raise DpoDiffError(f"no prompts in {source}" + (f" ({notes})" if notes else ""))
    return result


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
