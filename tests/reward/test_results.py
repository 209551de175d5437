"""Awaiting results: every job once, a bounded wait, and a Redis restart ridden out."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import uuid

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from tests.support.valkey import RedisServer

from trivia.reward.results import await_results


def push_later(port: int, key: str, results: list[dict], delay_s: float) -> threading.Thread:
    def run() -> None:
        time.sleep(delay_s)
        client = Redis(port=port)
        for result in results:
            client.rpush(key, json.dumps(result))
        client.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait(port: int, key: str, expected, timeout_s: float) -> tuple[dict, float]:
    async def run():
        client = AsyncRedis(port=port)
        started = time.monotonic()
        try:
            got = await await_results(client, key, expected, time.monotonic() + timeout_s)
        finally:
            await client.aclose()
        return got, time.monotonic() - started

    return asyncio.run(run())


def test_collects_every_job_once_and_ignores_strangers(valkey):
    key = uuid.uuid4().hex
    pushes = [{"job": 1, "v": "a"}, {"job": 0, "v": "b"}, {"job": 1, "v": "again"}, {"job": 9}]
    thread = push_later(valkey.port, key, pushes, 0.2)
    got, took = wait(valkey.port, key, range(2), 5)
    thread.join()
    assert got == {0: {"job": 0, "v": "b"}, 1: {"job": 1, "v": "a"}}
    assert took < 4  # well before the 5 s deadline


def test_returns_what_it_has_at_the_deadline(valkey):
    key = uuid.uuid4().hex
    thread = push_later(valkey.port, key, [{"job": 0}], 0.0)
    got, took = wait(valkey.port, key, range(3), 0.6)
    thread.join()
    assert set(got) == {0}
    assert 0.5 <= took < 3


def test_a_redis_restart_during_the_wait_loses_nothing(tmp_path, free_ports):
    server = RedisServer(free_ports(1), tmp_path)
    server.start(stdout=subprocess.DEVNULL)
    try:
        server.wait_ready()
        key = uuid.uuid4().hex
        Redis(port=server.port).rpush(key, json.dumps({"job": 0}))

        def restart_then_push() -> None:
            time.sleep(0.3)
            assert server.process is not None
            server.process.kill()
            server.process.wait()
            time.sleep(0.5)
            server.start(stdout=subprocess.DEVNULL)
            server.wait_ready()
            Redis(port=server.port).rpush(key, json.dumps({"job": 1}))

        thread = threading.Thread(target=restart_then_push)
        thread.start()
        got, _ = wait(server.port, key, range(2), 10)
        thread.join()
        assert set(got) == {0, 1}
    finally:
        server.stop()
