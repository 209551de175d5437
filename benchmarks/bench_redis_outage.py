"""How soon scoring resumes after Redis comes back, for outages of several lengths.

The local stack (valkey with AOF, one worker, the gateway, the stub answering at once) scores a
request, then valkey is killed (SIGKILL, as a crashed host or pod would) for the outage length and
started again on its data. Measured: from the moment valkey answers PING again to the first
reward request that comes back scored (a new table each time, so no answer comes from a cache;
the request is retried on 503 as the trainer does). Goal: under 2 s whatever the outage length
(RQ's own reconnect wait doubles up to 60 s; 15.8 s was measured after a 15 s outage before).

Outage lengths: `TRIVIA_BENCH_OUTAGES` (seconds, comma-separated; default 2,15,30).
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table as RichTable
from tests.support.openai_stub import openai_stub

from trivia.ports import free_port_block
from trivia.reward.stack import Stack, StackConfig
from trivia.trainer.rewards import fetch_rewards

GOAL_S = 2.0
QA = [{"question": "What is the Weight of Control?", "answer": "72"}]


def _otsl(n: int) -> str:
    return f"<fcel>Group<fcel>Weight<nl>\n<fcel>Control<fcel>72<nl>\n<fcel>Run {n}<fcel>1<nl>\n"


def _score(stack: Stack, n: int) -> float | None:
    items = [{"id": "0", "completion": _otsl(n), "qa_pairs": QA}]
    results = asyncio.run(fetch_rewards(stack.gateway_url, items, ["qa_f1"], timeout_s=120))
    return results[0]["qa_f1"]


def _wait_ping(redis: Redis) -> None:
    while True:
        try:
            if redis.ping():
                return
        except RedisError:
            time.sleep(0.01)


def measure(outages: list[float]) -> list[tuple[float, float]]:
    """(outage length, seconds from Redis back to the first scored request) per outage."""
    figures = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        openai_stub() as stub,
        Stack(
            StackConfig(
                port=free_port_block(), workers=1, qa_urls=[f"{stub.url}/v1"], data_dir=Path(tmp)
            ),
            say=lambda line: None,
        ) as stack,
    ):
        redis = Redis.from_url(stack.redis_url, socket_connect_timeout=1)
        valkey = next(child for child in stack.children if child.name == "valkey")
        assert _score(stack, 0) == 1.0
        for n, outage in enumerate(outages, start=1):
            os.kill(valkey.pid, signal.SIGKILL)  # a crash, not a clean shutdown
            valkey.process.wait()
            time.sleep(outage)
            valkey.start()
            _wait_ping(redis)
            back = time.perf_counter()
            score = _score(stack, n)
            figures.append((outage, time.perf_counter() - back))
            assert score == 1.0, score
    return figures


def main() -> None:
    outages = [float(s) for s in os.environ.get("TRIVIA_BENCH_OUTAGES", "2,15,30").split(",")]
    table = RichTable(title="Scoring after Redis returns")
    table.add_column("outage (s)", justify="right")
    table.add_column("first scored request after Redis is back (s)", justify="right")
    table.add_column(f"goal < {GOAL_S:g} s", justify="center")
    for outage, seconds in measure(outages):
        table.add_row(f"{outage:g}", f"{seconds:.2f}", "yes" if seconds < GOAL_S else "NO")
    Console().print(table)


if __name__ == "__main__":
    main()
