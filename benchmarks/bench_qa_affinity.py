"""QA replicas that keep their prefix caches: table affinity against least-loaded, in one run.

Workload: 512 tables × 30 questions (one GRPO step's QA calls for 64 images × 8 completions),
asked as the reward workers ask them: 16 workers (one `QAClient` each, 64 calls per endpoint at
most), each answering one table at a time with `answer_many` (the first question alone, then the
other 29 at once), against 4 QA replicas. Each replica is the stub OpenAI server in its
own process with a simulated prefix cache: 32 slots, 10 ms a call whose table the replica has
among its last 256 tables, 40 ms more for one it has not (the table's prefill); 256 tables of
prefix fit where 512 do not, as a replica's KV cache holds some steps' tables and not all.

- least-loaded: every question to the replica with the fewest outstanding calls (of its worker).
- affinity: each table to its owner by rendezvous hashing over the replicas, least-loaded when
  the owner's slots (of this worker's client) are all taken (`trivia.llm.affinity`).

Reported per routing: the share of questions answered by their table's replica (the one that
answered most of its questions), the load spread (most / fewest calls of a replica), the prefix
cache hit rate, the replica time (the simulated serving time of the busiest replica, its calls'
10 ms or 50 ms summed over its 32 slots: what the step waits for when the replicas are the
bottleneck, as GPUs are) with its ratio to least-loaded's, and the wall time. On a machine with
few cores the stubs and the clients are CPU-bound, and the wall time measures that, not routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table as RichTable
from tests.support.openai_stub import StubServer, openai_stub, table_key

from trivia.qa.client import QAClient
from trivia.qa.prompts import build_messages

REPLICAS = 4
TABLES = 512
QUESTIONS = 30
WORKERS = 16
TABLES_AT_ONCE = 1  # per worker, as an RQ worker runs one table job at a time
CLIENT_SLOTS = 64  # the client's calls per endpoint (TRIVIA_QA_MAX_CONCURRENCY_PER_ENDPOINT)
SLOTS = 32  # the replica's concurrent sequences
HIT_S = 0.010
MISS_S = 0.040
CACHE_TABLES = 256


@dataclass(frozen=True)
class Result:
    """One routing's pass over the workload."""

    name: str
    seconds: float
    calls: list[int]  # answered per replica
    own_share: float
    hit_rate: float
    replica_s: float  # simulated serving time of the busiest replica
    failed: int


def workload(tables: int = TABLES, questions: int = QUESTIONS) -> list[tuple[str, list[str]]]:
    """Distinct tables of a few rows, each with its questions (cell look-ups)."""
    items = []
    for t in range(tables):
        rows = "".join(
            f"<tr><td>item {t}-{r}</td><td>{(t * 7 + r * 13) % 997}</td></tr>" for r in range(12)
        )
        table = f"<table><tr><td>name</td><td>value {t}</td></tr>{rows}</table>"
        asked = [f"({q}) What is the value of item {t}-{q % 12}?" for q in range(questions)]
        items.append((table, asked))
    return items


async def run_workers(
    urls: list[str], items: list[tuple[str, list[str]]], *, affinity: bool
) -> tuple[float, int]:
    """Answer every question with WORKERS clients; the wall time and the failed answers."""
    shares = [items[w::WORKERS] for w in range(WORKERS)]
    failed = 0

    async def worker(share: list[tuple[str, list[str]]]) -> None:
        nonlocal failed
        async with QAClient(
            urls,
            model="trivia-stub",
            max_concurrency_per_endpoint=CLIENT_SLOTS,
            prime_prefix=True,
            table_affinity=affinity,
        ) as client:
            queue = list(share)

            async def lane() -> None:
                nonlocal failed
                while queue:
                    table, questions = queue.pop()
                    answers = await client.answer_many(table, questions)
                    failed += sum(not isinstance(a, str) for a in answers)

            await asyncio.gather(*(lane() for _ in range(TABLES_AT_ONCE)))

    started = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in shares))
    return time.perf_counter() - started, failed


def measure(
    name: str, stubs: list[StubServer], items: list[tuple[str, list[str]]], *, affinity: bool
) -> Result:
    """One routing over fresh replicas (empty caches, zeroed records)."""
    for stub in stubs:
        stub.reset()
    seconds, failed = asyncio.run(run_workers([s.url for s in stubs], items, affinity=affinity))
    keys = {table_key(build_messages(table, qs[0])): table for table, qs in items}
    per_table: dict[str, Counter[int]] = defaultdict(Counter)
    calls, hits, busy = [], 0, []
    for index, stub in enumerate(stubs):
        records = [r for r in stub.records() if r["status"] == 200]
        calls.append(len(records))
        hit = sum(bool(r["prefix_hit"]) for r in records)
        hits += hit
        busy.append((len(records) * HIT_S + (len(records) - hit) * MISS_S) / SLOTS)
        for record in records:
            per_table[record["table_key"]][index] += 1
    assert set(per_table) == set(keys)
    total = sum(calls)
    own = sum(max(counter.values()) for counter in per_table.values())
    return Result(name, seconds, calls, own / total, hits / total, max(busy), failed)


def main(tables: int = TABLES) -> None:
    console = Console(width=max(Console().width, 120))
    items = workload(tables)
    with contextlib.ExitStack() as stack:
        stubs = [
            stack.enter_context(
                openai_stub(
                    process=True,
                    slots=SLOTS,
                    max_waiting=4096,
                    latency_s=HIT_S,
                    prefix_miss_latency_s=MISS_S,
                    prefix_cache_tables=CACHE_TABLES,
                    record_messages=False,
                    answer="<answer>1</answer>",
                )
            )
            for _ in range(REPLICAS)
        ]
        results = [
            measure("least-loaded", stubs, items, affinity=False),
            measure("affinity", stubs, items, affinity=True),
        ]
    console.print(_report(results, len(items)))


def _report(results: list[Result], tables: int) -> RichTable:
    base = results[0]
    table = RichTable(
        title=f"{tables} tables × {QUESTIONS} questions, {REPLICAS} replicas, {WORKERS} workers"
    )
    columns = ("routing", "own replica", "load max/min", "prefix hits", "replica time", "speed-up")
    for column in (*columns, "wall", "wall speed-up"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.name,
            f"{r.own_share:.3f}",
            f"{max(r.calls) / max(min(r.calls), 1):.2f}",
            f"{r.hit_rate:.1%}",
            f"{r.replica_s:.2f} s",
            f"{base.replica_s / r.replica_s:.2f}×",
            f"{r.seconds:.1f} s",
            f"{base.seconds / r.seconds:.2f}×",
        )
        if r.failed:
            table.add_row(r.name, f"{r.failed} answers failed", "", "", "", "")
    return table


if __name__ == "__main__":
    main()
