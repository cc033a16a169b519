"""Whether the libraries' own loading bars show: the CLI and Ray actors turn them off, since they
show progress of their own. A plain flag, read when a model loads (no torch import here)."""

from __future__ import annotations

_progress_bars = True


def set_progress_bars(enabled: bool) -> None:
    """Show (or hide) diffusers' and transformers' loading bars when models load."""
    global _progress_bars
    _progress_bars = enabled


def progress_bars() -> bool:
    return _progress_bars
