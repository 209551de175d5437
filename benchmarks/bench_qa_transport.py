"""The QA client's cost per call with each HTTP transport, and the SDK's own request pipeline.

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
- SDK pipeline: the same chat calls sent with `AsyncOpenAI.post` over the same aiohttp client,
  64 at a time, raw responses (no typed models), and nothing else: no endpoint choice, retries,
  affinity or metrics. This is how the client sent before it built its requests itself.

The guard: the QA client's CPU per call stays at the hand-written client's it replaced (within
5 %), which is what keeps the reward benchmark's time (`bench_reward.py`, CPU-bound on two
cores). Measured side by side (the replaced client from its last commit, runs interleaved, two
shared cores, load average 5–8): 3,000 calls, CPU per call 0.65–0.78 ms for the hand-written
client, 1.17–1.78 ms through the SDK pipeline, 0.51–0.71 ms for the client as it is. This
benchmark at load average 6.6–7.2: the client 0.60–0.71 ms, the SDK pipeline 1.14–1.26 ms
(1.83×). Earlier figures: a hand-written HTTP/1.1 transport 0.30 ms, httpx's pool 8.6–8.8 ms.
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
from typing import Protocol

import httpx2
import openai
from rich.console import Console
from rich.table import Table as RichTable
from tests.support.openai_stub import openai_stub

from trivia.llm.client import aiohttp_client
from trivia.qa.client import DEFAULT_EXTRA_BODY, QAClient
from trivia.qa.prompts import build_messages

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pubtabnet"
CALLS = 5_000
REFERENCE_CALLS = 600  # httpx's default pool costs ~5 ms a call: fewer keep the run short
CONCURRENCY = 64
CALLERS = 96
LATENCY_S = 0.05
SLOTS = 64
ROUNDS = 2
MODEL = "trivia-stub"


class Asker(Protocol):
    """What a variant measures: `answer` one question about one table, closed on exit."""

    async def answer(self, table: str, question: str) -> str: ...

    async def __aenter__(self) -> Asker: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


@dataclass(frozen=True)
class Variant:
    """One way of sending under test."""

    name: str
    open: Callable[[str], Asker]  # the asker for the stub's URL
    calls: int


def _qa_client(http_client: Callable[[int], httpx2.AsyncClient]) -> Callable[[str], Asker]:
    def open_client(url: str) -> Asker:
        return QAClient(
            url, model=MODEL, max_concurrency_per_endpoint=CONCURRENCY, http_client=http_client
        )

    return open_client


class SdkPipeline:
    """Chat calls through `AsyncOpenAI.post` (raw responses), `CONCURRENCY` at a time."""

    def __init__(self, url: str) -> None:
        self._http = aiohttp_client(CONCURRENCY)
        self._sdk = openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key="unused", max_retries=0, http_client=self._http
        )
        self._slots = asyncio.Semaphore(CONCURRENCY)

    async def answer(self, table: str, question: str) -> str:
        body = {"model": MODEL, "messages": build_messages(table, question), "temperature": 0,
                "max_tokens": 64, **DEFAULT_EXTRA_BODY}  # fmt: skip
        async with self._slots:
            response = await self._sdk.post("/chat/completions", cast_to=httpx2.Response, body=body)
        return str(json.loads(response.content)["choices"][0]["message"]["content"])

    async def __aenter__(self) -> SdkPipeline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._http.aclose()


@dataclass(frozen=True)
class Round:
    """One measured pass of one variant."""

    cpu_s: float
    wall_s: float
    calls: int
    connections: int


VARIANTS = (
    Variant("aiohttp (DefaultAioHttpClient)", _qa_client(aiohttp_client), CALLS),
    Variant(
        "httpx default (DefaultAsyncHttpxClient)",
        _qa_client(
            lambda n: openai.DefaultAsyncHttpxClient(
                limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n)
            )
        ),
        REFERENCE_CALLS,
    ),
    Variant("SDK pipeline (AsyncOpenAI.post, aiohttp)", SdkPipeline, CALLS),
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
    async with variant.open(stub.url) as client:  # type: ignore[attr-defined]
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
    table = RichTable(title="Per-call cost: the QA client by HTTP transport; the SDK pipeline")
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
