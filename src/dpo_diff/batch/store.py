"""The results store of a batch run: one SQLite database (WAL) in the run's folder.

A finished prompt is one row, written in one transaction after its images are on disk, so a
run killed at any moment (SIGKILL included) loses at most the prompt in flight and never
leaves a half-written row; the prompt is the primary key, so nothing is stored twice. The
run's configuration is stored once; opening the store with another configuration is refused.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ..errors import DpoDiffError

DB_NAME = "results.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    prompt TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    row_id TEXT NOT NULL,
    status TEXT NOT NULL,          -- done | filtered | refused
    initial_loss REAL,
    best_prompt TEXT,
    best_negative_prompt TEXT,
    best_loss REAL,
    cost INTEGER,
    seconds REAL,
    message TEXT,
    image_dir TEXT,
    result_json TEXT,
    finished_at TEXT NOT NULL DEFAULT (datetime('now'))
);
"""


class ResultStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        try:
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as err:
            raise DpoDiffError(f"'{self.path}' is not a dpo-diff results database: {err}") from None

    @classmethod
    def open_existing(cls, folder: str | Path) -> ResultStore:
        if not (Path(folder) / DB_NAME).is_file():
            raise DpoDiffError(f"'{folder}' holds no batch results ({DB_NAME}): run `dpo-diff run ... --out {folder}` first")
        return cls(folder)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------- config
    def config(self) -> dict | None:
        row = self.conn.execute("SELECT value FROM config WHERE key = 'run'").fetchone()
        return json.loads(row[0]) if row else None

    def check_config(self, config: dict) -> None:
        """Refuse a configuration other than the stored one, naming what differs.

        The configuration is stored with the first result (see :meth:`add`), so a run that
        failed before finishing any prompt can be retried with corrected options.
        """
        stored = self.config()
        if stored is not None and stored != json.loads(json.dumps(config)):
            keys = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
            if "task" in keys:
                what = f"a {stored.get('task')} run, not {config.get('task')}"
            else:
                what = ", ".join(f"{k}: {stored.get(k)!r} there, {config.get(k)!r} now" for k in keys[:4])
            raise DpoDiffError(
                f"'{self.folder}' holds results of another configuration ({what}); use another --out or the same options"
            )

    # ------------------------------------------------------------ results
    def finished(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT prompt FROM results")}

    def add(self, row: dict, config: dict) -> None:
        """Store one finished prompt (and the run's configuration, the first time) in one transaction.

        A prompt already stored is left as it is.
        """
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO config VALUES ('run', ?)", (json.dumps(config, sort_keys=True),)
            )
            self.conn.execute(f"INSERT OR IGNORE INTO results ({columns}) VALUES ({marks})", tuple(row.values()))

    def rows(self, status: str | None = "done") -> list[dict]:
        self.conn.row_factory = sqlite3.Row
        try:
            query = "SELECT * FROM results" + (" WHERE status = ?" if status else "") + " ORDER BY rowid"
            return [dict(r) for r in self.conn.execute(query, (status,) if status else ())]
        finally:
            self.conn.row_factory = None

    def counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall())
