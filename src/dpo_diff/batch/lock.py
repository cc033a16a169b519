"""The one-writer lock of a results folder (``results.lock``, ``flock`` on an open descriptor).

A run holds it for its lifetime, so a second run on the same folder is refused in one line
naming the first; the kernel drops the lock when its process dies, however it dies, so a
killed run never leaves a lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ..errors import DpoDiffError

LOCK_NAME = "results.lock"


class StoreLock:
    """The one-writer lock of a results folder, held until :meth:`release` or the process ends.

    The lock file holds the holder's pid, host name and start time, so a refused run can say
    who holds the folder. ``flock`` is released by the kernel when the holder's descriptor
    closes, which happens however the process ends (SIGKILL included): a lock file left by a
    dead run is stale by construction and is simply taken over.
    """

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        try:
            self.fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise DpoDiffError(
                f"cannot create the lock file '{self.path}' ({err.strerror or err}): make the folder writable "
                "or use another --out"
            ) from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            os.close(self.fd)
            self.fd = None
            raise DpoDiffError(
                f"'{Path(folder)}' is in use by another dpo-diff run ({holder}); wait for it to finish or stop it, "
                "or use another --out"
            ) from None
        except OSError as err:  # a file system without flock
            os.close(self.fd)
            self.fd = None
            raise DpoDiffError(f"cannot lock '{self.path}' ({err.strerror or err}): use a folder on a local disk") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError:
            pass  # the lock holds without its note; a refused run then names no pid

    def _holder(self) -> str:
        """Who holds the lock, as the lock file says."""
        try:
            info = json.loads(os.pread(self.fd, 4096, 0).decode() or "{}")
            return f"pid {int(info['pid'])} on {info.get('host', '?')}, started {info.get('started', '?')}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that is still starting"

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a process opening it)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> StoreLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
