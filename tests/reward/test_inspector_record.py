"""What the inspector keeps of a request, and how Redis keeps it bounded (real valkey)."""

from __future__ import annotations

import asyncio
import json
import random
import string
import threading

import lxml.html
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis as AsyncRedis

from trivia.reward.api import RewardRequest
from trivia.reward.assemble import assemble
from trivia.reward.inspector import store
from trivia.reward.inspector.pages import page
from trivia.reward.inspector.record import build_record, invalid_reason, summarise
from trivia.reward.inspector.recorder import Recorder
from trivia.reward.inspector.views import cell_diff, spread
from trivia.reward.keys import inspect_detail_key, inspect_index_key, inspect_summary_key
from trivia.reward.planner import plan
from trivia.settings import Settings

OTSL = "<fcel>Name<fcel>Age<nl>\n<fcel>Bob<fcel>42<nl>\n"
PAIRS = [{"question": "Age of Bob?", "answer": "42"}, {"question": "Name?", "answer": "Bob"}]


def _request() -> RewardRequest:
    return RewardRequest.model_validate(
        {
            "items": [
                {"id": "g0", "completion": OTSL, "qa_pairs": PAIRS},
                {"id": "g1", "completion": OTSL.replace("42", "24"), "qa_pairs": PAIRS},
                {"id": "g2", "completion": OTSL[:-5], "qa_pairs": PAIRS},
                {"id": "h0", "completion": OTSL, "qa_pairs": PAIRS[:1]},
                {"id": "n0", "completion": OTSL},
            ]
        }
    )


def _job_result(job, index, *, fresh: bool) -> dict:
    replies = [f"<answer>{q[:3]}</answer>" for q in job.questions]
    return {
        "job": index,
        "error": None,
        "answers": [[r[8:11], None] for r in replies],
        "f1": [1.0 if g == 0 else 0.5 for g in range(len(job.golds))],
        "teds": [],
        "replies": replies,
        "fresh": [fresh] * len(replies),
    }


def _record(request_id: str = "0123456789abcdef", step: int | None = 3) -> dict:
    request = _request()
    work = plan(request)
    results = {i: _job_result(job, i, fresh=i == 0) for i, job in enumerate(work.jobs)}
    items = assemble(request, work, results, "deadline")
    return build_record(
        request_id=request_id,
        time=1_800_000_000.0,
        duration_s=0.5,
        step=step,
        request=request,
        plan=work,
        results=results,
        items=items,
    )


def test_items_are_grouped_by_their_questions_in_request_order():
    record = _record()
    assert record["groups"] == [[0, 1, 2], [3], [4]]
    assert [item["group"] for item in record["items"]] == [0, 0, 0, 1, 2]


def test_each_answer_carries_raw_reply_extraction_f1_and_cache_flag():
    record = _record()
    first = record["items"][0]
    question, expected, raw, prediction, f1, cached, error = first["answers"][0]
    assert (question, expected) == ("Age of Bob?", "42")
    assert raw == "<answer>Age</answer>" and prediction == "Age"
    assert f1 == 1.0 and cached is False and error is None
    # The second table's job was answered from the cache.
    assert all(answer[5] is True for answer in record["items"][1]["answers"])


def test_the_table_the_qa_model_saw_is_kept_once_per_unique_table():
    record = _record()
    first, changed, cut, same, _ = record["items"]
    assert first["table"] == same["table"] != changed["table"]
    assert "<td>42</td>" in record["tables"][first["table"]]
    assert cut["table"] is None and cut["valid"] is False


def test_invalid_items_say_why_and_summary_counts_outcomes():
    record = _record()
    assert record["items"][2]["reason"] == "truncated: does not end with <nl>"
    summary = summarise(record)
    assert summary["items"] == 5 and summary["groups"] == 3
    assert (summary["invalid"], summary["no_signal"], summary["failed"]) == (1, 1, 0)
    # Mean over the valid, scored items: g0, g1 (0.75 each), h0 (1.0).
    assert summary["mean_f1"] == pytest.approx((0.75 + 0.75 + 1.0) / 3)


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        ("", "empty completion"),
        ("<table><tr><td>1</td>", "truncated: does not end with </table>"),
        ("<table></table>", "no table cells"),
        ("<nl>", "no table cells"),
    ],
)
def test_invalid_reason(completion, reason):
    assert invalid_reason(completion) == reason


def test_a_record_over_the_size_limit_keeps_full_detail_for_its_first_groups():
    record = _record()
    rng = random.Random(0)
    for item in record["items"]:  # incompressible completions
        item["completion"] = "".join(rng.choices(string.ascii_letters, k=20_000))
    whole, _ = store.encode_detail(record, 1 << 20)
    limit = len(whole) * 4 // 5  # room for the first group (3 of 5 items), not for all
    blob, trimmed = store.encode_detail(record, limit)
    assert len(blob) <= limit
    kept = store.decode_detail(blob)
    assert trimmed == 2 and kept["trimmed"] == 2
    assert kept["items"][0]["completion"] == record["items"][0]["completion"]
    assert kept["items"][3]["completion"] is None and kept["items"][3]["trimmed"]
    assert kept["items"][3]["qa_f1"] == record["items"][3]["qa_f1"]


def test_redis_keeps_the_last_n_requests_and_deletes_what_falls_off(redis):
    redis.delete(inspect_index_key())
    ids = [f"{n:016x}" for n in range(5)]
    for rid in ids:
        store.save(redis, _record(rid), keep=3, ttl_s=60, max_record_bytes=1 << 20)
    assert [r.decode() for r in redis.lrange(inspect_index_key(), 0, -1)] == ids[::-1][:3]
    for rid in ids[:2]:
        assert not redis.exists(inspect_summary_key(rid), inspect_detail_key(rid))
    for rid in ids[2:]:
        assert 0 < redis.ttl(inspect_detail_key(rid)) <= 60
        assert 0 < redis.ttl(inspect_summary_key(rid)) <= 60
    assert json.loads(redis.get(inspect_summary_key(ids[-1])))["id"] == ids[-1]


def test_summaries_filter_by_step_and_details_round_trip(redis, valkey):
    redis.delete(inspect_index_key())
    store.save(redis, _record("a" * 16, step=1), keep=10, ttl_s=60, max_record_bytes=1 << 20)
    store.save(redis, _record("b" * 16, step=2), keep=10, ttl_s=60, max_record_bytes=1 << 20)

    async def read():
        client = AsyncRedis(port=valkey.port)
        try:
            everything = await store.load_summaries(client)
            second = await store.load_summaries(client, step=2)
            detail = await store.load_detail(client, "b" * 16)
            gone = await store.load_detail(client, "c" * 16)
        finally:
            await client.aclose()
        return everything, second, detail, gone

    everything, second, detail, gone = asyncio.run(read())
    assert [s["id"] for s in everything] == ["b" * 16, "a" * 16]
    assert [s["id"] for s in second] == ["b" * 16]
    assert detail == _record("b" * 16, step=2)
    assert gone is None


def test_group_spread_is_over_scored_completions_only():
    assert spread([None, None]).scored == 0
    result = spread([1.0, 0.0, None, 0.5])
    assert (result.scored, result.mean, result.low, result.high) == (3, 0.5, 0.0, 1.0)
    assert result.std == pytest.approx((1 / 6) ** 0.5)


def test_cell_diff_marks_changed_text_spans_and_missing_cells():
    a = "<table><tr><td>x</td><td>1</td></tr><tr><td colspan=2>t</td></tr></table>"
    b = "<table><tr><td>x</td><td>2</td></tr><tr><td>t</td><td>u</td></tr></table>"
    rows_a, rows_b, changes = cell_diff(a, b)
    assert [[c.changed for c in row] for row in rows_a] == [[False, True], [True]]
    assert [[c.changed for c in row] for row in rows_b] == [[False, True], [True, True]]
    assert changes == [("r1 c2", "1", "2"), ("r2 c1", "t", "t"), ("r2 c2", "∅", "u")]


def _dropped() -> float:
    return REGISTRY.get_sample_value("trivia_inspect_records_total", {"outcome": "dropped"}) or 0


def test_recordings_beyond_two_in_flight_are_dropped_not_queued(redis):
    redis.delete(inspect_index_key())
    release = threading.Event()
    ids = iter(f"{n:016x}" for n in range(100, 103))

    def slow() -> dict:
        record = _record(next(ids))
        release.wait(60)
        return record

    async def submit_three() -> float:
        recorder = Recorder(redis, Settings(inspect_keep=10))
        before = _dropped()
        for _ in range(3):
            recorder.submit(slow)
        dropped = _dropped() - before
        release.set()
        await recorder.drain()
        return dropped

    assert asyncio.run(submit_three()) == 1
    assert redis.llen(inspect_index_key()) == 2


def test_keep_zero_records_nothing(redis):
    redis.delete(inspect_index_key())

    async def submit() -> None:
        recorder = Recorder(redis, Settings(inspect_keep=0))
        recorder.submit(_record)
        await recorder.drain()

    asyncio.run(submit())
    assert redis.llen(inspect_index_key()) == 0


def test_an_item_page_lists_every_accepted_answer_of_a_question():
    request = RewardRequest.model_validate(
        {
            "items": [
                {
                    "id": "a",
                    "completion": OTSL,
                    "qa_pairs": [{"question": "Age of Bob?", "answer": ["42 years", "42"]}],
                }
            ]
        }
    )
    work = plan(request)
    results = {0: _job_result(work.jobs[0], 0, fresh=True)}
    items = assemble(request, work, results, "deadline")
    record = build_record(
        request_id="0" * 16, time=0.0, duration_s=0.1, step=None, request=request,
        plan=work, results=results, items=items,
    )  # fmt: skip
    html = page(
        "item.html", record=record, index=0, item=record["items"][0], group=[0],
        table_html="", seen_by_qa=True, other=None,
    ).body.decode()  # fmt: skip
    row = lxml.html.fromstring(html).xpath("//table[@id='answers']/tbody/tr")[0]
    assert row.xpath("string(td[2])").strip() == "42 years | 42"
