"""The names of every Redis key the reward service writes besides RQ's own (one place)."""

from __future__ import annotations

__all__ = ["answer_cache_key", "maintenance_lock_key", "request_results_key"]

_PREFIX = "trivia"


def request_results_key(request_id: str) -> str:
    """The list a request's jobs push their results to; the gateway pops from it."""
    return f"{_PREFIX}:request:{request_id}:results"


def answer_cache_key(model: str, prompt_version: str, table_hash: str) -> str:
    """The hash of cached answers for one table (fields: questions)."""
    return f"{_PREFIX}:answers:{prompt_version}:{model}:{table_hash}"


def maintenance_lock_key(queue_name: str) -> str:
    """Held for one sweep for abandoned jobs, so that one worker at a time sweeps."""
    return f"{_PREFIX}:maintenance:{queue_name}"
