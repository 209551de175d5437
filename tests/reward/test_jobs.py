"""One table job against a real stub and valkey: answers, F1, TEDS, cache, failures."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from trivia.qa.client import QAClient
from trivia.reward.cache import AnswerCache
from trivia.reward.enqueue import job_payload
from trivia.reward.jobs import publish, score
from trivia.reward.planner import TableJob

TABLE = (
    "<table><tr><td>Name</td><td>Age</td></tr><tr><td>Bob</td><td>42</td></tr>"
    "<tr><td>Ann</td><td>37</td></tr></table>"
)


def table_job(*pairs: tuple[str, str | list[str]], solutions: tuple[str, ...] = ()) -> TableJob:
    job = TableJob(table_hash=uuid.uuid4().hex, table=TABLE)
    for question, answer in pairs:
        job.add_pair(question, answer)
    for solution in solutions:
        job.add_solution(solution)
    return job


def run(job: TableJob, stub_url: str, redis, *, deadline_in: float = 10.0) -> dict:
    payload = job_payload("r", 0, job, notify="k", ttl_s=60, deadline=time.time() + deadline_in)

    async def go() -> dict:
        async with QAClient(stub_url, max_retries=0, request_timeout_s=2) as client:
            return await score(payload, client=client, cache=AnswerCache(redis, 60))

    return asyncio.run(go())


def test_answers_are_extracted_and_scored_and_served_from_cache_next_time(stub, redis):
    stub.configure(answer="<answer>42</answer>")
    job = table_job(("Age of Bob?", "42"), ("Age of Ann?", "37"), ("Age of Bob?", "forty-two"))
    first = run(job, stub.url, redis)
    assert first["error"] is None
    assert first["answers"] == [["42", None], ["42", None]]
    assert first["f1"] == [1.0, 0.0, 0.0]
    assert (first["asked"], first["cached"]) == (2, 0)
    assert stub.stats()["answered"] == 2
    second = run(job, stub.url, redis)
    assert (second["asked"], second["cached"]) == (0, 2)
    assert second["f1"] == first["f1"]
    assert stub.stats()["answered"] == 2


def test_an_answer_with_aliases_scores_its_best_alias(stub, redis):
    stub.configure(answer="<answer>42</answer>")
    job = table_job(("Age of Bob?", ["forty-two", "42 years"]), ("Age of Bob?", ["7", "8"]))
    payload = job_payload("r", 0, job, notify="k", ttl_s=60, deadline=time.time() + 10)
    assert json.loads(json.dumps(payload))["golds"][0] == [0, ["forty-two", "42 years"]]
    result = run(job, stub.url, redis)
    assert result["f1"] == [pytest.approx(2 / 3), 0.0]


@pytest.mark.parametrize("failure", ["503", "close"])
def test_qa_failures_are_errors_not_scores_and_are_not_cached(stub, redis, failure):
    stub.configure(failure=failure)
    job = table_job(("Age of Bob?", "42"))
    result = run(job, stub.url, redis)
    assert result["f1"] == [None]
    prediction, error = result["answers"][0]
    assert prediction is None
    assert error.startswith("qa ")
    stub.configure(failure="none", answer="<answer>42</answer>")
    assert run(job, stub.url, redis)["f1"] == [1.0]


def test_a_job_past_its_deadline_makes_no_call(stub, redis):
    result = run(table_job(("Age of Bob?", "42")), stub.url, redis, deadline_in=-1)
    assert result == {"job": 0, "error": "deadline passed before the table was scored"}
    assert stub.stats()["calls"] == 0


def test_teds_is_scored_per_solution(stub, redis):
    other = TABLE.replace("37", "73")
    result = run(table_job(solutions=(TABLE, other, "<p>no table</p>")), stub.url, redis)
    assert result["teds"][0] == [1.0, 1.0, None]
    assert 0.5 < result["teds"][1][0] < 1.0
    assert result["teds"][2] == [0.0, 0.0, None]


def test_teds_comes_raw_and_normalised(stub, redis):
    headed = TABLE.replace("<tr><td>Name</td><td>Age</td></tr>", "").replace(
        "<table>", "<table><thead><tr><th>Name</th><th>Age</th></tr></thead>"
    )
    raw, normalised, error = run(table_job(solutions=(headed,)), stub.url, redis)["teds"][0]
    assert error is None
    assert raw < 0.9
    assert normalised == 1.0
    assert stub.stats()["calls"] == 0


def test_publish_pushes_json_with_an_expiry(redis):
    key = uuid.uuid4().hex
    publish(redis, {"notify": key, "ttl": 30}, {"job": 3, "error": None})
    assert json.loads(redis.lpop(key)) == {"job": 3, "error": None}
    publish(redis, {"notify": key, "ttl": 30}, {"job": 4})
    assert 0 < redis.ttl(key) <= 30
