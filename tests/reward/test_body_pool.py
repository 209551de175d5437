"""Large bodies are read in child processes and answered exactly as small ones.

In-process tests drive `BodyPool` with a real process pool; the HTTP tests send the same request
compact (read in a thread) and padded with JSON whitespace past `LARGE_BODY_BYTES` (read in the
gateway's body pool) to the session's stack and compare the answers.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from trivia.reward import intake
from trivia.reward.body_pool import BodyPool, ParserUnavailable
from trivia.reward.inspector import store
from trivia.reward.keys import inspect_detail_key, inspect_index_key, inspect_summary_key
from trivia.settings import Settings

from .conftest import AUTH, LARGE_BODY_BYTES, MAX_QUESTIONS_PER_ITEM, unique

OTSL = "<fcel>Name<fcel>Age<nl>\n<fcel>Bob<fcel>42<nl>\n<fcel>Ann<fcel>37<nl>\n"
MIN_BYTES = 4096


def _request() -> dict[str, Any]:
    pairs = [
        {"question": unique("What is the Age of Bob?"), "answer": "42"},
        {"question": unique("What is the Age of Ann?"), "answer": ["37", "thirty-seven"]},
    ]
    return {
        "items": [
            {"id": "a", "completion": OTSL, "qa_pairs": pairs},
            {"id": "b", "completion": OTSL, "qa_pairs": pairs},  # same table: asked once
            {"id": "cut", "completion": "<fcel>Name<fcel>Age<nl>\n<fcel>Bo", "qa_pairs": pairs},
            {"id": "quiet", "completion": OTSL},
        ]
    }


def _compact(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _padded(payload: Any, size: int) -> bytes:
    """The same JSON, made at least `size` bytes long with whitespace (meaning unchanged)."""
    raw = json.dumps(payload, indent=2).encode()
    return raw + b" " * max(0, size - len(raw))


def _reads(where: str) -> float:
    return REGISTRY.get_sample_value("trivia_body_reads_total", {"where": where}) or 0.0


def _children() -> set[int]:
    return {child.pid for child in multiprocessing.active_children() if child.pid is not None}


def _pool(processes: int = 1) -> BodyPool:
    return BodyPool(Settings(body_parse_min_bytes=MIN_BYTES, body_parse_processes=processes))


BAD = [
    b'{"items": [',  # malformed: 400
    _compact({}),  # 422: items missing
    _compact({"items": [{"id": 1, "completion": OTSL}]}),  # 422: strict types
    _compact({"items": [{"id": "a", "completion": OTSL, "extra": 1}]}),  # 422: unknown field
    _compact(
        {
            "items": [
                {
                    "id": "many",
                    "completion": OTSL,
                    "qa_pairs": [{"question": f"q{i}", "answer": "1"} for i in range(300)],
                }
            ]
        }
    ),  # 422: over max_questions_per_item (256 by default)
]


def test_a_large_body_is_read_in_a_child_and_gives_what_a_thread_gives():
    payload = _request()
    small = _compact(payload)
    large = _padded(payload, MIN_BYTES)
    assert len(small) < MIN_BYTES <= len(large)
    results = {0: {"answers": [["42", None], ["37", None]], "f1": [1.0, 1.0], "teds": []}}

    async def run() -> tuple[Any, ...]:
        pool = _pool()
        pool.start()
        try:
            before = _reads("process"), _reads("thread")
            by_thread = await pool.read(small)
            by_child = await pool.read(large)
            counted = _reads("process") - before[0], _reads("thread") - before[1]
            children = _children()
            rendered = (
                await pool.render(by_thread, results, "deadline"),
                await pool.render(by_child, results, "deadline"),
            )
        finally:
            await pool.close()
        return by_thread, by_child, counted, children, rendered

    by_thread, by_child, counted, children, (from_thread, from_child) = asyncio.run(run())
    assert isinstance(by_thread, intake.Accepted)
    assert isinstance(by_child, intake.AcceptedRaw)  # only the jobs came back
    assert by_child.raw == large
    assert counted == (1, 1)
    assert children and os.getpid() not in children
    assert [(j.table, j.questions, j.golds) for j in by_child.jobs] == [
        (j.table, j.questions, j.golds) for j in by_thread.jobs
    ]
    assert len(by_child.jobs) == 1 and by_child.saved_calls == by_thread.saved_calls == 2
    assert from_child.content == from_thread.content
    assert json.loads(from_child.content)["results"][0]["qa_f1"] == 1.0
    assert from_child.outcomes == from_thread.outcomes == {"valid": 2, "invalid": 1, "no_signal": 1}
    assert from_child.items == []  # not sent back: the gateway needs only the bytes


@pytest.mark.parametrize("raw", BAD)
def test_a_large_bad_body_is_refused_with_the_reasons_a_small_one_gets(raw):
    large = raw + b" " * MIN_BYTES

    async def run() -> tuple[Any, Any]:
        pool = _pool()
        pool.start()
        try:
            return await pool.read(raw), await pool.read(large)
        finally:
            await pool.close()

    small_answer, large_answer = asyncio.run(run())
    assert isinstance(small_answer, intake.Refused)
    assert isinstance(large_answer, intake.Refused)
    assert large_answer.status_code == small_answer.status_code
    if small_answer.status_code == 400:
        assert large_answer.detail.startswith("malformed JSON: ")
    else:
        assert large_answer.detail == small_answer.detail


def test_the_children_survive_sigterm_and_stop_with_the_pool():
    # The stack signals the gateway's whole process group; a parse in flight must go on.
    async def run() -> tuple[set[int], set[int], Any, set[int]]:
        pool = _pool()
        pool.start()
        first = await pool.read(_padded(_request(), MIN_BYTES))
        started = _children()
        for pid in started:
            os.kill(pid, signal.SIGTERM)
        again = await pool.read(_padded(_request(), MIN_BYTES))
        alive = _children()
        await pool.close()
        assert isinstance(first, intake.AcceptedRaw)
        return started, alive, again, _children()

    started, alive, again, after_close = asyncio.run(run())
    assert isinstance(again, intake.AcceptedRaw)
    assert started and started <= alive
    assert not after_close & started


_OWNER = """
import asyncio, multiprocessing, sys, time
from trivia.reward.body_pool import BodyPool
from trivia.settings import Settings

async def main():
    pool = BodyPool(Settings(body_parse_min_bytes=10, body_parse_processes=1))
    pool.start()
    await pool.read(b'{"items": []}' + b" " * 100)
    print(*[c.pid for c in multiprocessing.active_children()], flush=True)
    time.sleep(600)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_the_children_go_when_the_gateway_is_killed_outright():
    owner = subprocess.Popen([sys.executable, "-c", _OWNER], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        children = [int(pid) for pid in owner.stdout.readline().split()]
        assert children
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in children):
            assert time.monotonic() < deadline, f"children {children} outlived the gateway"
            time.sleep(0.05)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_a_child_that_dies_fails_its_call_and_a_new_pool_takes_over():
    async def run() -> Any:
        pool = _pool()
        pool.start()
        try:
            with pytest.raises(ParserUnavailable, match="started a new one"):
                await pool.run(os._exit, 1)
            return await pool.read(_padded(_request(), MIN_BYTES))
        finally:
            await pool.close()

    assert isinstance(asyncio.run(run()), intake.AcceptedRaw)


def test_no_processes_means_every_body_in_a_thread():
    async def run() -> Any:
        pool = BodyPool(Settings(body_parse_min_bytes=0, body_parse_processes=0))
        pool.start()
        try:
            assert not pool.is_large(10**9)
            return await pool.read(_padded(_request(), MIN_BYTES))
        finally:
            await pool.close()

    assert isinstance(asyncio.run(run()), intake.Accepted)


# --- the running gateway ----------------------------------------------------------------------


def _gateway_reads(client, where: str) -> float:
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(f'trivia_body_reads_total{{where="{where}"}}'):
            return float(line.split()[-1])
    return 0.0


def _post(client, raw: bytes, step: int | None = None):
    headers = {**AUTH, "content-type": "application/json"}
    if step is not None:
        headers["X-Trivia-Step"] = str(step)
    return client.post("/v1/rewards", content=raw, headers=headers)


def test_the_gateway_scores_a_large_body_as_a_small_one_and_records_it(stack):
    payload = _request()
    small = _compact(payload)
    large = _padded(payload, LARGE_BODY_BYTES)
    step = random.randrange(10**6, 10**9)
    with stack.client() as client:
        before = _gateway_reads(client, "process")
        small_answer = _post(client, small)
        large_answer = _post(client, large, step)
        after = _gateway_reads(client, "process")
    assert small_answer.status_code == large_answer.status_code == 200, large_answer.text
    assert large_answer.json() == small_answer.json()
    assert after - before == 1  # the large one went to the pool, the small one did not
    results = large_answer.json()["results"]
    assert [r["qa_f1"] for r in results] == [1.0, 1.0, 0.0, None]

    # Its inspector record was built in the pool too, from the same bytes.
    redis = stack.redis()
    deadline = time.monotonic() + 60
    record = None
    while record is None and time.monotonic() < deadline:
        for rid in redis.lrange(inspect_index_key(), 0, 20):
            summary = redis.get(inspect_summary_key(rid.decode()))
            if summary is not None and json.loads(summary)["step"] == step:
                record = store.decode_detail(redis.get(inspect_detail_key(rid.decode())))
        time.sleep(0.05)
    redis.close()
    assert record is not None, "the large request was not recorded"
    assert [i["completion"] for i in record["items"]] == [i["completion"] for i in payload["items"]]
    assert [i["qa_f1"] for i in record["items"]] == [1.0, 1.0, 0.0, None]
    assert record["items"][2]["reason"].startswith("truncated")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"items": [{"id": 1, "completion": OTSL}]},
        {"items": [{"id": "a", "completion": OTSL, "qa_pairs": [{"question": "q"}]}]},
        {
            "items": [
                {
                    "id": "big",
                    "completion": OTSL,
                    "qa_pairs": [
                        {"question": f"q{i}", "answer": "1"}
                        for i in range(MAX_QUESTIONS_PER_ITEM + 1)
                    ],
                }
            ]
        },
    ],
)
def test_the_gateway_refuses_a_large_body_for_the_reasons_it_refuses_a_small_one(stack, payload):
    with stack.client() as client:
        before = _gateway_reads(client, "process")
        small = _post(client, _compact(payload))
        large = _post(client, _padded(payload, LARGE_BODY_BYTES))
        after = _gateway_reads(client, "process")
    assert small.status_code == large.status_code == 422
    assert large.json() == small.json()
    assert after - before == 1


def test_the_gateway_answers_a_large_malformed_body_with_400(stack):
    raw = b'{"items": [' + b" " * LARGE_BODY_BYTES
    with stack.client() as client:
        response = _post(client, raw)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed JSON: EOF while parsing")


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}") / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_killed_parser_fails_its_request_with_503_and_the_next_one_is_served(stack):
    gateway = next(pid for pid in _children_of(stack.process.pid) if " gateway" in _cmdline(pid))
    parsers = [pid for pid in _children_of(gateway) if "multiprocessing.spawn" in _cmdline(pid)]
    assert parsers, "the gateway has no body-pool process"
    for pid in parsers:
        os.kill(pid, signal.SIGKILL)
    payload = _request()
    with stack.client() as client:
        refused = _post(client, _padded(payload, LARGE_BODY_BYTES))
        served = _post(client, _padded(payload, LARGE_BODY_BYTES))
    assert refused.status_code == 503
    assert "body parser process died" in refused.json()["detail"]
    assert served.status_code == 200, served.text
    assert [r["qa_f1"] for r in served.json()["results"]] == [1.0, 1.0, 0.0, None]
