"""Batch runs over prompt datasets: sources, a resumable results store, evaluation, report."""

from .runner import BatchStatus, run_batch
from .sources import PromptRecord, load_prompts, parse_filter
from .store import ResultStore

__all__ = ["BatchStatus", "PromptRecord", "ResultStore", "load_prompts", "parse_filter", "run_batch"]
