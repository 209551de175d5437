"""The QA client's cost per call with each HTTP transport, in the same run.

Workload: chat calls through `QAClient` (one endpoint, 64 concurrent per endpoint, 96 callers, so
some wait for a slot) about the PubTabNet ground truths in `examples/pubtabnet/`, against the stub
OpenAI server in its own process answering after 50 ms with 64 slots, as a busy vLLM would. Each
transport runs twice, interleaved, so machine load shows as the spread between its two rounds.
CPU is this process's CPU time (the stub is another process) divided by the calls; wall is the
elapsed time divided by the calls (ideal: 50 ms / 64 slots = 0.78 ms); new conns, the
connections the stub saw opened during the measured calls (after a warm-up that opens the pool).

- aiohttp: the client's default, the OpenAI SDK's `DefaultAioHttpClient` with a connection
  limit sized to the concurrency (`trivia.llm.client.aiohttp_client`).
- httpx default: the SDK's httpx pool (`DefaultAsyncHttpxClient`), for reference; it is slow
  enough per call that it runs fewer calls.

Earlier figures on two shared cores: a hand-written HTTP/1.1 transport 0.30 ms CPU per call,
the hand-written client on aiohttp 0.40–0.42 ms, httpx's pool 8.6–8.8 ms.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
from rich.console import Console
from rich.table import Table as RichTable
from tests.support.openai_stub import openai_stub

from trivia.llm.client import aiohttp_client
from trivia.qa.client import QAClient

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pubtabnet"
CALLS = 5_000
REFERENCE_CALLS = 600  # httpx's default pool costs ~5 ms a call: fewer keep the run short
CONCURRENCY = 64
CALLERS = 96
LATENCY_S = 0.05
SLOTS = 64
ROUNDS = 2


@dataclass(frozen=True)
class Variant:
    """One transport under test."""

    name: str
    make: Callable[[int], httpx2.AsyncClient]  # the HTTP client for a connection limit
    calls: int


@dataclass(frozen=True)
class Round:
    """One measured pass of one variant."""

    cpu_s: float
    wall_s: float
    calls: int
    connections: int


VARIANTS = (
    Variant("aiohttp (DefaultAioHttpClient)", aiohttp_client, CALLS),
    Variant(
        "httpx default (DefaultAsyncHttpxClient)",
        lambda n: openai.DefaultAsyncHttpxClient(
            limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n)
        ),
        REFERENCE_CALLS,
    ),
)


def main() -> None:
    console = Console(width=max(Console().width, 120))
    tables = [
        entry["html"] for entry in json.loads((SAMPLES / "sample_gt.json").read_text()).values()
    ]
    rounds: dict[str, list[Round]] = {v.name: [] for v in VARIANTS}
    with openai_stub(process=True, latency_s=LATENCY_S, slots=SLOTS, record_messages=False) as stub:
        for _ in range(ROUNDS):
            for variant in VARIANTS:
                rounds[variant.name].append(asyncio.run(_measure(stub, variant, tables)))
    console.print(_report(rounds))
    sniffio = "installed" if importlib.util.find_spec("sniffio") else "not installed"
    console.print(
        f"{CALLS:,} chat calls per round ({REFERENCE_CALLS:,} for httpx's default pool), "
        f"{ROUNDS} rounds interleaved; {CALLERS} callers, {CONCURRENCY} per endpoint; stub "
        f"{LATENCY_S * 1000:.0f} ms, {SLOTS} slots, own process; sniffio {sniffio}. CPU and wall "
        "are per call: median of the rounds (range); ratios against the client's default "
        "(aiohttp) medians."
    )


async def _measure(stub: object, variant: Variant, tables: list[str]) -> Round:
    url = stub.url  # type: ignore[attr-defined]
    async with QAClient(
        url, model="trivia-stub", max_concurrency_per_endpoint=CONCURRENCY, http_client=variant.make
    ) as client:
        # Warm up: open the connections and settle the pools before the clock starts.
        await asyncio.gather(
            *(client.answer(tables[i % len(tables)], f"q{i}") for i in range(SLOTS))
        )
        stub.reset()  # type: ignore[attr-defined]
        pending = iter(range(variant.calls))

        async def caller() -> None:
            for i in pending:
                await client.answer(tables[i % len(tables)], f"What is in row {i % 7}, column 2?")

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(CALLERS)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    stats = stub.stats()  # type: ignore[attr-defined]
    if stats["answered"] != variant.calls:
        raise RuntimeError(f"{variant.name}: {stats['answered']} of {variant.calls} answered")
    return Round(cpu_s=cpu, wall_s=wall, calls=variant.calls, connections=stats["connections"])


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def _report(rounds: dict[str, list[Round]]) -> RichTable:
    table = RichTable(title="QAClient per-call cost by HTTP transport")
    for column in (
        "transport",
        "calls",
        "CPU ms/call",
        "× CPU",
        "wall ms/call",
        "× wall",
        "new conns",
    ):
        table.add_column(column, justify="left" if column == "transport" else "right")
    base = rounds[VARIANTS[0].name]
    base_cpu = statistics.median(r.cpu_s / r.calls for r in base)
    base_wall = statistics.median(r.wall_s / r.calls for r in base)
    for name, runs in rounds.items():
        cpu = [r.cpu_s / r.calls * 1000 for r in runs]
        wall = [r.wall_s / r.calls * 1000 for r in runs]
        table.add_row(
            name,
            f"{runs[0].calls:,}",
            _ms(cpu),
            f"{statistics.median(cpu) / 1000 / base_cpu:.2f}",
            _ms(wall),
            f"{statistics.median(wall) / 1000 / base_wall:.2f}",
            str(max(r.connections for r in runs)),
        )
    return table


if __name__ == "__main__":
    main()
