"""Keep the last N scored requests in Redis, bounded in count, size and time.

Each request is two keys with the same TTL: a small JSON summary (the list page reads only
these) and its detail as zlib-compressed JSON. A list of ids, newest first, is trimmed to
`keep` on every write, and the keys of the ids trimmed off are deleted at once, so Redis never
holds more than `keep` requests of at most `max_record_bytes` each. A request whose detail
compresses to more than that keeps full detail for its first groups only; the others keep
their scores.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from starlette.concurrency import run_in_threadpool

from trivia.reward.inspector.record import summarise
from trivia.reward.keys import inspect_detail_key, inspect_index_key, inspect_summary_key

_LEVEL = 1  # zlib's fastest: tables compress well at any level; the scoring path is what counts
_HEAVY = ("completion", "answers")


def encode_detail(record: dict[str, Any], max_bytes: int) -> tuple[bytes, int]:
    """The compressed detail and how many items lost their completion and answers to fit."""
    blob = _compress(record)
    if len(blob) <= max_bytes:
        return blob, 0
    groups = record["groups"]
    keep = int(len(groups) * max_bytes / len(blob) * 0.9)
    while True:
        trimmed = _trim(record, groups[keep:])
        blob = _compress(trimmed)
        if len(blob) <= max_bytes or keep == 0:
            return blob, trimmed["trimmed"]
        keep = keep // 2


def _trim(record: dict[str, Any], dropped_groups: list[list[int]]) -> dict[str, Any]:
    dropped = {i for group in dropped_groups for i in group}
    items = [
        {**item, "completion": None, "answers": [], "trimmed": True} if i in dropped else item
        for i, item in enumerate(record["items"])
    ]
    kept_tables = {item["table"] for item in items if not item.get("trimmed")}
    tables = [t if j in kept_tables else None for j, t in enumerate(record["tables"])]
    return {**record, "items": items, "tables": tables, "trimmed": len(dropped)}


def _compress(record: dict[str, Any]) -> bytes:
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    return zlib.compress(text.encode("utf-8", "surrogatepass"), _LEVEL)


def decode_detail(blob: bytes) -> dict[str, Any]:
    """The detail record from its stored bytes."""
    return json.loads(zlib.decompress(blob).decode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Encoded:
    """A record ready to store: its summary, compressed detail and how many items were trimmed."""

    request_id: str
    summary: dict[str, Any]
    blob: bytes
    trimmed: int


def encode(record: dict[str, Any], max_record_bytes: int) -> Encoded:
    """The CPU part of saving a record (pure; a large request's runs in a child process)."""
    blob, trimmed = encode_detail(record, max_record_bytes)
    summary = summarise({**record, "trimmed": trimmed})
    return Encoded(record["id"], summary, blob, trimmed)


def save(
    redis: Redis, record: dict[str, Any], *, keep: int, ttl_s: int, max_record_bytes: int
) -> int:
    """Store `record`, trim the list to `keep` and delete what fell off; items trimmed."""
    return put(redis, encode(record, max_record_bytes), keep=keep, ttl_s=ttl_s)


def put(redis: Redis, encoded: Encoded, *, keep: int, ttl_s: int) -> int:
    """Store an encoded record, trim the list to `keep` and delete what fell off; items trimmed."""
    request_id = encoded.request_id
    index = inspect_index_key()
    with redis.pipeline(transaction=True) as pipe:
        pipe.set(inspect_summary_key(request_id), json.dumps(encoded.summary), ex=ttl_s)
        pipe.set(inspect_detail_key(request_id), encoded.blob, ex=ttl_s)
        pipe.lpush(index, request_id)
        pipe.lrange(index, keep, -1)
        pipe.ltrim(index, 0, keep - 1)
        pipe.expire(index, ttl_s)
        fell_off = pipe.execute()[3]
    if fell_off:
        old = [key for rid in fell_off for key in _keys(rid.decode())]
        redis.delete(*old)
    return encoded.trimmed


def _keys(request_id: str) -> tuple[str, str]:
    return inspect_summary_key(request_id), inspect_detail_key(request_id)


async def load_summaries(redis: AsyncRedis, step: int | None = None) -> list[dict[str, Any]]:
    """Summaries of the kept requests, newest first; only those of `step` when given."""
    ids = await redis.lrange(inspect_index_key(), 0, -1)
    if not ids:
        return []
    raw = await redis.mget([inspect_summary_key(rid.decode()) for rid in ids])
    summaries = [json.loads(value) for value in raw if value is not None]
    if step is not None:
        summaries = [s for s in summaries if s["step"] == step]
    return summaries


class _DecodedCache:
    """The last few decoded details: a person clicks through the items of one request."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._items.get(request_id)
            if record is not None:
                self._items.move_to_end(request_id)
            return record

    def put(self, request_id: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._items[request_id] = record
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_decoded = _DecodedCache(size=2)


async def load_detail(redis: AsyncRedis, request_id: str) -> dict[str, Any] | None:
    """A kept request's detail, or None when it expired or was trimmed off the list."""
    blob = await redis.get(inspect_detail_key(request_id))
    if blob is None:
        return None
    cached = _decoded.get(request_id)
    if cached is not None:
        return cached
    record = await run_in_threadpool(decode_detail, blob)
    _decoded.put(request_id, record)
    return record
