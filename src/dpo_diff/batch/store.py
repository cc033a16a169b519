"""The results store of a batch run: one SQLite database (WAL) in the run's folder.

A finished prompt is one row, written in one transaction after its images are on disk, so a
run killed at any moment (SIGKILL included) loses at most the prompt in flight and never
leaves a half-written row; the prompt is the primary key, so nothing is stored twice.

A store has one writer: a run holds :class:`~dpo_diff.batch.lock.StoreLock` (``results.lock``, ``flock`` on an
open descriptor) for its lifetime, so a second run on the same folder is refused in one line
naming the first; the kernel drops the lock when its process dies, however it dies, so a
killed run never leaves a lock behind. A new store is built in a temporary file with its
schema and the run's configuration, then renamed into place: ``results.sqlite`` is either a
complete store or absent, and a 0-byte or foreign file under that name is refused, never
reused. Opening the store with another configuration is refused once a prompt is stored.

Every SQLite failure (damaged pages, a full disk, a file-size limit, a read-only file) is
turned into one :class:`~dpo_diff.errors.DpoDiffError` line that says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ..errors import DpoDiffError

DB_NAME = "results.sqlite"
# The columns every version of the store has had; a database without them is not ours.
REQUIRED_COLUMNS = {"prompt", "source", "row_id", "status", "result_json"}

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


def store_error(err: sqlite3.Error | OSError, path: Path) -> DpoDiffError:
    """One line for a failure of the database at ``path``: what happened and what to do."""
    if isinstance(err, OSError):
        return disk_error(err, path)
    name = getattr(err, "sqlite_errorname", "") or ""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return DpoDiffError(
            f"the results database '{path}' is damaged ({text}); the finished prompts it still holds can be "
            f"recovered with `sqlite3 {path} .recover`; to go on, move it away or use another --out"
        )
    if name.startswith("SQLITE_NOTADB") or "not a database" in text:
        return DpoDiffError(
            f"'{path}' is not a dpo-diff results database ({text}); move it away or use another --out"
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return DpoDiffError(
            f"cannot write the results database '{path}': it is read-only ({text}); "
            "make the folder and the file writable, or use another --out"
        )
    if name.startswith(("SQLITE_IOERR", "SQLITE_FULL")) or "disk" in text:
        return DpoDiffError(
            f"cannot write the results database '{path}' ({text}): the disk is full or a file-size limit "
            "(ulimit -f) is set; free space and run the same command to resume (finished prompts are kept)"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return DpoDiffError(f"the results database '{path}' is busy ({text}): another process holds it; try again")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return DpoDiffError(
            f"cannot open the results database '{path}' ({text}): check the folder, its permissions and that nothing "
            f"else stands at {path.name}-wal or {path.name}-shm"
        )
    return DpoDiffError(f"the results database '{path}' failed: {text}")


def disk_error(err: OSError, path: Path | str) -> DpoDiffError:
    """One line for a failed file write at ``path``, naming the likely cause."""
    reason = err.strerror or str(err)
    hint = {
        errno.ENOSPC: "free space on the disk",
        errno.EFBIG: "raise the file-size limit (ulimit -f) or free space",
        errno.EDQUOT: "raise your disk quota or free space",
        errno.EROFS: "the file system is read-only: use another --out",
        errno.EACCES: "make it writable or use another --out",
        errno.EPERM: "make it writable or use another --out",
        errno.ENOTDIR: "a file stands where a folder should be: move it away or use another --out",
        errno.EEXIST: "a file stands where a folder should be: move it away or use another --out",
        errno.EISDIR: "a folder stands where a file should be: move it away or use another --out",
    }.get(err.errno, "fix the folder")
    return DpoDiffError(
        f"cannot write '{path}' ({reason}): {hint}, then run the same command to resume (finished prompts are kept)"
    )


class ResultStore:
    """The store of ``folder``: opened if it exists, else (with ``create``) made atomically.

    ``config``, when given, is written into a new store with its schema, and checked against
    (or, while no prompt is stored, written over) an existing one. ``create=False`` opens an
    existing store for reading and writes nothing. Only the holder of :class:`StoreLock`
    should create or write a store.
    """

    def __init__(self, folder: str | Path, config: dict | None = None, create: bool = True):
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.conn: sqlite3.Connection | None = None
        if not self.path.exists():
            if not create:
                raise DpoDiffError(
                    f"'{folder}' holds no batch results ({DB_NAME}): run `dpo-diff run ... --out {folder}` first"
                )
            self._create(config)
        elif not self.path.is_file():
            raise DpoDiffError(f"'{self.path}' is not a file: move it away or use another --out")
        elif self.path.stat().st_size == 0:
            raise DpoDiffError(
                f"'{self.path}' is empty (0 bytes), not a dpo-diff results database; move it away or use another --out"
            )
        try:
            with self._guard():
                self.conn = sqlite3.connect(self.path, timeout=30)
                self._check_schema()
                if create:  # a reader writes nothing
                    self.conn.execute("PRAGMA journal_mode=WAL")
                    self.conn.execute("PRAGMA synchronous=NORMAL")
                    self.conn.executescript(SCHEMA)
            if create and config is not None:
                self.set_config(config)
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn SQLite and disk failures into one line."""
        try:
            yield
        except sqlite3.Error as err:
            raise store_error(err, self.path) from None
        except OSError as err:
            raise disk_error(err, self.path) from None

    def _create(self, config: dict | None) -> None:
        """Build the store (schema and configuration) in a temporary file, then rename it into place."""
        tmp = self.path.with_name(f".{DB_NAME}.{os.getpid()}.tmp")
        try:
            with self._guard():
                # left by a creating run that was killed (only the lock holder creates)
                for stale in self.folder.glob(f".{DB_NAME}.*.tmp*"):
                    stale.unlink(missing_ok=True)
                conn = sqlite3.connect(tmp)
                try:
                    conn.executescript(SCHEMA)
                    if config is not None:
                        with conn:
                            conn.execute("INSERT INTO config VALUES ('run', ?)", (json.dumps(config, sort_keys=True),))
                    conn.commit()
                finally:
                    conn.close()
                with open(tmp, "rb+") as handle:
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def _check_schema(self) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(results)")} if "results" in tables else set()
        if "config" not in tables or not REQUIRED_COLUMNS <= columns:
            raise DpoDiffError(
                f"'{self.path}' is a database of something else, not dpo-diff results; move it away or use another --out"
            )
        problem = self.conn.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({problem})")

    @classmethod
    def open_existing(cls, folder: str | Path) -> ResultStore:
        """The store of a finished or running batch, for reading."""
        return cls(folder, create=False)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
            self.conn = None

    # ------------------------------------------------------------- config
    def config(self) -> dict | None:
        with self._guard():
            row = self.conn.execute("SELECT value FROM config WHERE key = 'run'").fetchone()
        return json.loads(row[0]) if row else None

    def check_config(self, config: dict) -> None:
        """Refuse a configuration other than the stored one, naming what differs."""
        stored = self.config()
        if stored is not None and stored != json.loads(json.dumps(config)):
            keys = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
            if "task" in keys:
                what = f"the results of an '{stored.get('task')}' run, not '{config.get('task')}'"
            else:
                what = ", ".join(f"{k}: {stored.get(k)!r} there, {config.get(k)!r} now" for k in keys[:4])
            raise DpoDiffError(
                f"'{self.folder}' holds results of another configuration ({what}); use another --out or the same options"
            )

    def set_config(self, config: dict) -> None:
        """Make ``config`` the store's configuration, before any prompt runs.

        Once a prompt is stored the configuration is fixed (another one is refused, see
        :meth:`check_config`); until then it is replaced, so a run that failed before finishing
        a prompt can be retried with corrected options.
        """
        with self._guard():
            if self.conn.execute("SELECT 1 FROM results LIMIT 1").fetchone() is not None:
                self.check_config(config)
                return
            with self.conn:
                self.conn.execute(
                    "INSERT OR REPLACE INTO config VALUES ('run', ?)", (json.dumps(config, sort_keys=True),)
                )

    # ------------------------------------------------------------ results
    def finished(self) -> set[str]:
        with self._guard():
            return {r[0] for r in self.conn.execute("SELECT prompt FROM results")}

    def add(self, row: dict, config: dict) -> None:
        """Store one finished prompt (and the run's configuration, if missing) in one transaction.

        A prompt already stored is left as it is.
        """
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._guard(), self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO config VALUES ('run', ?)", (json.dumps(config, sort_keys=True),)
            )
            self.conn.execute(f"INSERT OR IGNORE INTO results ({columns}) VALUES ({marks})", tuple(row.values()))

    def rows(self, status: str | None = "done") -> list[dict]:
        self.conn.row_factory = sqlite3.Row
        try:
            with self._guard():
                query = "SELECT * FROM results" + (" WHERE status = ?" if status else "") + " ORDER BY rowid"
                return [dict(r) for r in self.conn.execute(query, (status,) if status else ())]
        finally:
            self.conn.row_factory = None

    def counts(self) -> dict[str, int]:
        with self._guard():
            return dict(self.conn.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall())
