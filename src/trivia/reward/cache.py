"""The answer cache: answers reused across requests and optimiser steps.

GRPO samples the same image many times and repeats images across steps, so the same table and
question come back often. An answer depends only on (model, prompt version, table, question);
that is the key. Only successful answers are cached, and every entry expires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis import Redis

from trivia.qa.prompts import PROMPT_VERSION
from trivia.reward.keys import answer_cache_key


class AnswerCache:
    """Raw QA replies in one Redis hash per (model, prompt version, table)."""

    def __init__(self, redis: Redis, ttl_s: int, prompt_version: str = PROMPT_VERSION) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._prompt_version = prompt_version

    @property
    def enabled(self) -> bool:
        """A TTL of 0 turns the cache off."""
        return self._ttl_s > 0

    def get_many(self, model: str, table_hash: str, questions: Sequence[str]) -> list[str | None]:
        """The cached reply to each question, None where there is none."""
        if not self.enabled or not questions:
            return [None] * len(questions)
        key = answer_cache_key(model, self._prompt_version, table_hash)
        values = self._redis.hmget(key, list(questions))
        return [v.decode("utf-8", "surrogatepass") if v is not None else None for v in values]

    def put_many(self, model: str, table_hash: str, replies: Mapping[str, str]) -> None:
        """Store replies and restart the table's TTL."""
        if not self.enabled or not replies:
            return
        key = answer_cache_key(model, self._prompt_version, table_hash)
        encoded = {q: r.encode("utf-8", "surrogatepass") for q, r in replies.items()}
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=encoded)  # type: ignore[arg-type]
            pipe.expire(key, self._ttl_s)
            pipe.execute()
