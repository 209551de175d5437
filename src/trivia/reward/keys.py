"""The names of every Redis key the reward service writes besides RQ's own (one place)."""

from __future__ import annotations

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


def inspect_index_key() -> str:
    """The list of kept request ids for the inspector, newest first."""
    return f"{_PREFIX}:inspect:requests"


def inspect_summary_key(request_id: str) -> str:
    """A kept request's summary (JSON): one line of the inspector's list."""
    return f"{_PREFIX}:inspect:summary:{request_id}"


def inspect_detail_key(request_id: str) -> str:
    """A kept request's full detail (zlib-compressed JSON)."""
    return f"{_PREFIX}:inspect:detail:{request_id}"
