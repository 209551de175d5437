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


def blocked_clients(port: int) -> int:
    client = Redis(port=port)
    try:
        return int(client.info("clients")["blocked_clients"])
    finally:
        client.close()


def wait_until_blocked(port: int) -> None:
    """Until a client waits in BLPOP (the waiter is polling; the test's timeout bounds this)."""
    while blocked_clients(port) < 1:
        time.sleep(0.01)


def push_later(port: int, key: str, results: list[dict]) -> threading.Thread:
    """Push `results` once the waiter is blocked on `key`'s list."""

    def run() -> None:
        wait_until_blocked(port)
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
    thread = push_later(valkey.port, key, pushes)
    got, _ = wait(valkey.port, key, range(2), 60)
    thread.join()
    assert got == {0: {"job": 0, "v": "b"}, 1: {"job": 1, "v": "a"}}


def test_returns_what_it_has_at_the_deadline(valkey):
    key = uuid.uuid4().hex
    thread = push_later(valkey.port, key, [{"job": 0}])
    got, took = wait(valkey.port, key, range(3), 0.6)
    thread.join()
    assert set(got) == {0}
    assert took >= 0.6  # it waited for the missing ones until the deadline


def test_a_redis_restart_during_the_wait_loses_nothing(tmp_path, free_ports):
    server = RedisServer(free_ports(1), tmp_path)
    server.start(stdout=subprocess.DEVNULL)
    try:
        server.wait_ready()
        key = uuid.uuid4().hex
        Redis(port=server.port).rpush(key, json.dumps({"job": 0}))

        def restart_then_push() -> None:
            wait_until_blocked(server.port)
            assert server.process is not None
            server.process.kill()
            server.process.wait()
            time.sleep(0.5)  # the outage
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
