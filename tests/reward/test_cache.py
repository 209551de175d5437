"""The answer cache: keyed by model, prompt version, table and question; expiring."""

from __future__ import annotations

import uuid

from trivia.qa.prompts import PROMPT_VERSION
from trivia.reward.cache import AnswerCache
from trivia.reward.keys import answer_cache_key


def test_replies_round_trip_and_misses_are_none(redis):
    cache = AnswerCache(redis, ttl_s=60)
    table = uuid.uuid4().hex
    cache.put_many("m", table, {"q1": "<answer>42</answer>", "q2": "缺失"})
    assert cache.get_many("m", table, ["q1", "q2", "q3"]) == ["<answer>42</answer>", "缺失", None]
    assert 0 < redis.ttl(answer_cache_key("m", PROMPT_VERSION, table)) <= 60


def test_model_and_prompt_version_are_part_of_the_key(redis):
    table = uuid.uuid4().hex
    AnswerCache(redis, ttl_s=60, prompt_version="v1").put_many("m", table, {"q": "a"})
    assert AnswerCache(redis, ttl_s=60, prompt_version="v2").get_many("m", table, ["q"]) == [None]
    assert AnswerCache(redis, ttl_s=60, prompt_version="v1").get_many("n", table, ["q"]) == [None]
    assert AnswerCache(redis, ttl_s=60, prompt_version="v1").get_many("m", table, ["q"]) == ["a"]


def test_a_zero_ttl_turns_the_cache_off(redis):
    cache = AnswerCache(redis, ttl_s=0)
    table = uuid.uuid4().hex
    cache.put_many("m", table, {"q": "a"})
    assert cache.get_many("m", table, ["q"]) == [None]
    assert not redis.exists(answer_cache_key("m", PROMPT_VERSION, table))
