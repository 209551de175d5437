"""The reward service against the reference approach, on one optimiser step's worth of work.

Workload: 512 completions = 64 tables × 8 recognitions, each with 30 questions. The 64 tables are
the PubTabNet ground truths in `examples/pubtabnet/` (40) and variants of them with every cell's
text changed (24). The 8 recognitions of a table are what a policy typically samples: the table
in OTSL three times, once in HTML, two with one cell's text changed, one with a cell blanked, and
one cut off mid-row. QA runs against the stub OpenAI server (its own process) answering with the
lookup answerer after 50 ms, 64 calls at a time, as a busy vLLM would.

- Ideal time: unique QA calls × 0.05 s / 64 slots; the service's time is measured end to end
  (one POST of all 512 items through gateway, Redis, workers), answer cache empty.
- Prefix share: per prompt, the share that is a prefix common to all prompts of its table (what
  vLLM's prefix cache can serve once per table).
- Reference approach: a thread pool of 64 threads calling once per completion × question, as the
  published trainer does (no validity check, no dedupe).
- Inspector recording: the gateway keeps every scored request for `/inspect` after answering it;
  its cost is the gateway's own `trivia_inspect_record_seconds` for the measured request, as a
  share of the request's time, and the same request with recording off (`TRIVIA_INSPECT_KEEP=0`).

On two cores this time is bound by CPU, much of it the QA client's per call; its guard (within
5 % of the hand-written client it replaced) is measured in `bench_qa_transport.py`, and the
side-by-side times of this benchmark are in the README.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table as RichTable
from tests.support.openai_stub import openai_stub, prefix_share

from trivia.dataset import pubtabnet_html
from trivia.dataset.qa_from_table import qa_from_table
from trivia.ports import free_port_block
from trivia.qa.prompts import build_messages
from trivia.reward.stack import Stack, StackConfig
from trivia.tables import html_to_otsl, html_to_table, table_to_html

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pubtabnet"
TABLES = 64
RECOGNITIONS = 8
QUESTIONS = 30
LATENCY_S = 0.05
SLOTS = 64
WORKERS = int(os.environ.get("TRIVIA_BENCH_WORKERS", "4"))
REFERENCE_THREADS = 64
GOAL_RATIO = 1.25
GOAL_PREFIX = 0.9
GOAL_RECORDING = 0.02
_FCEL = re.compile(r"<fcel>([^<]*)")


@dataclass
class Run:
    """One measured pass of the workload."""

    name: str
    seconds: float
    calls: int
    ideal_s: float
    prefix_share: float | None = None
    record_s: float | None = None


def main() -> None:
    console = Console()
    items = workload()
    naive = len(items) * QUESTIONS
    with openai_stub(latency_s=LATENCY_S, slots=SLOTS, record_messages=False, process=True) as stub:
        ours = _service_run("service", items, stub)
        unrecorded = _service_run("service, inspector off", items, stub, record=False)
        reference = _reference_run(items, stub)
    console.print(_report([ours, unrecorded, reference], naive))
    ratio = ours.seconds / ours.ideal_s
    console.print(
        f"{len(items)} completions ({TABLES} tables × {RECOGNITIONS} recognitions) × "
        f"{QUESTIONS} questions; stub {LATENCY_S * 1000:.0f} ms, {SLOTS} slots; "
        f"{WORKERS} workers. Service: {ratio:.2f} × ideal (goal ≤ {GOAL_RATIO}), prefix share "
        f"{ours.prefix_share:.3f} (goal ≥ {GOAL_PREFIX}), {reference.seconds / ours.seconds:.1f}× "
        "faster than the reference (a thread pool of 64 calling once per completion × question). "
        "Ideal = QA calls × latency / slots; naive = completions × questions."
    )
    assert ours.record_s is not None
    console.print(
        f"Inspector recording: {ours.record_s * 1000:.0f} ms of gateway time after the response "
        f"= {ours.record_s / ours.seconds:.2%} of the scoring path (goal < {GOAL_RECORDING:.0%}); "
        f"the same request with recording off took {unrecorded.seconds:.2f} s "
        f"({ours.seconds / unrecorded.seconds:.3f}× with it on, run-to-run noise included)."
    )


# --- workload ------------------------------------------------------------------------------------


def base_tables() -> list[str]:
    """The 40 PubTabNet ground truths shipped with the project, as HTML."""
    gt = json.loads((SAMPLES / "sample_gt.json").read_text())
    tables = [entry["html"] for entry in gt.values()]
    with (SAMPLES / "examples.jsonl").open() as lines:
        tables += [pubtabnet_html(json.loads(line)["html"]) for line in lines if line.strip()]
    return tables


def _variant(html: str) -> str:
    """Another table of the same shape and size: every cell's text gets a suffix."""
    table = html_to_table(html)
    assert table is not None
    cells = tuple(replace(c, text=f"{c.text} (b)") if c.text else c for c in table.cells)
    return table_to_html(replace(table, cells=cells))


def questions(html: str) -> list[dict[str, str]]:
    """30 questions: the cell questions the dataset builder makes, padded by position."""
    pairs = qa_from_table(html, max_questions=QUESTIONS)
    table = html_to_table(html)
    assert table is not None
    grid = table.text_grid()
    slots = [(r, c) for r in range(table.n_rows) for c in range(table.n_cols)]
    for n, (r, c) in enumerate(slots * QUESTIONS):
        if len(pairs) >= QUESTIONS:
            break
        pairs.append({"question": f"What is in row {r + 1}, column {c + 1} ({n})?",
                      "answer": grid[r][c] or "Not answerable"})  # fmt: skip
    return pairs[:QUESTIONS]


def _changed(otsl: str, nth: int, suffix: str | None) -> str:
    """OTSL with its `nth` text cell's text extended by `suffix`, or blanked when None."""
    cells = list(_FCEL.finditer(otsl))
    cell = cells[nth % len(cells)]
    new = "<ecel>" if suffix is None else f"<fcel>{cell.group(1)}{suffix}"
    return otsl[: cell.start()] + new + otsl[cell.end() :]


def recognitions(html: str) -> list[str]:
    """Eight recognitions of one table, with the differences a sampled policy shows."""
    otsl = html_to_otsl(html)
    cut = otsl[: len(otsl) * 2 // 3]
    cut = cut[: cut.rfind("<fcel>") + 3]  # mid-tag: not a complete table
    return [otsl, otsl, otsl, html, _changed(otsl, 1, "9"), _changed(otsl, 5, " x"),
            _changed(otsl, 3, None), cut]  # fmt: skip


def workload() -> list[dict[str, Any]]:
    """The 512 request items."""
    tables = base_tables()
    tables += [_variant(t) for t in tables[: TABLES - len(tables)]]
    items = []
    for t, html in enumerate(tables[:TABLES]):
        pairs = questions(html)
        for g, completion in enumerate(recognitions(html)):
            items.append({"id": f"t{t}-g{g}", "completion": completion, "qa_pairs": pairs})
    return items


# --- runs ----------------------------------------------------------------------------------------


def _service_run(name: str, items: list[dict[str, Any]], stub: Any, *, record: bool = True) -> Run:
    with tempfile.TemporaryDirectory() as data_dir:
        config = StackConfig(
            port=free_port_block(10 + WORKERS),
            workers=WORKERS,
            qa_urls=[stub.url],
            data_dir=Path(data_dir),
            env={
                "TRIVIA_REQUEST_DEADLINE_S": "600",
                "TRIVIA_INSPECT_KEEP": "200" if record else "0",
            },
        )
        with Stack(config, say=lambda _: None) as stack, httpx.Client(timeout=700) as client:
            url = f"{stack.gateway_url}/v1/rewards"
            warm = [{**item, "id": "warm", "completion": item["completion"] + "<fcel>w<nl>"}
                    for item in items[:: RECOGNITIONS * 8]]  # fmt: skip
            client.post(url, json={"items": warm}).raise_for_status()
            before = _recorded(client, stack.gateway_url, 1 if record else 0)
            stub.reset()
            started = time.perf_counter()
            response = client.post(url, json={"items": items})
            seconds = time.perf_counter() - started
            response.raise_for_status()
            after = _recorded(client, stack.gateway_url, 2 if record else 0)
    results = response.json()["results"]
    failed = [r for r in results if r["error"]]
    if failed:
        raise RuntimeError(f"{len(failed)} items failed, e.g. {failed[0]['error']}")
    calls = stub.stats()["answered"]
    return Run(
        name=name,
        seconds=seconds,
        calls=calls,
        ideal_s=calls * LATENCY_S / SLOTS,
        prefix_share=prefix_share(stub.records()),
        record_s=after[1] - before[1] if record else None,
    )


def _recorded(client: httpx.Client, gateway: str, count: int) -> tuple[int, float]:
    """(requests recorded, seconds spent recording) from the gateway's metrics, once `count`
    requests have been recorded (recording runs just after the response)."""
    deadline = time.monotonic() + 120
    while True:
        text = client.get(f"{gateway}/metrics").text
        samples = {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        done = int(samples.get("trivia_inspect_record_seconds_count", 0))
        if done >= count or time.monotonic() > deadline:
            return done, samples.get("trivia_inspect_record_seconds_sum", 0.0)
        time.sleep(0.05)


def _reference_run(items: list[dict[str, Any]], stub: Any) -> Run:
    """One blocking call per completion × question from a thread pool (the published way)."""
    limits = httpx.Limits(
        max_connections=REFERENCE_THREADS, max_keepalive_connections=REFERENCE_THREADS
    )
    calls = [(item["completion"], pair["question"]) for item in items for pair in item["qa_pairs"]]
    stub.reset()
    with httpx.Client(base_url=stub.url, timeout=60, limits=limits) as client:

        def ask(call: tuple[str, str]) -> str:
            table, question = call
            body = {"model": "trivia-stub", "messages": build_messages(table, question),
                    "temperature": 0, "max_tokens": 64}  # fmt: skip
            reply = client.post("/v1/chat/completions", json=body)
            reply.raise_for_status()
            return reply.json()["choices"][0]["message"]["content"]

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(REFERENCE_THREADS) as pool:
            list(pool.map(ask, calls))
        seconds = time.perf_counter() - started
    return Run(
        name="reference",
        seconds=seconds,
        calls=len(calls),
        ideal_s=len(calls) * LATENCY_S / SLOTS,
    )


def _report(runs: list[Run], naive: int) -> RichTable:
    table = RichTable(title="Reward for one GRPO step: 512 completions × 30 questions")
    for column in ("approach", "QA calls", "naive", "ideal s", "time s", "× ideal", "prefix"):
        table.add_column(column, justify="left" if column == "approach" else "right")
    for run in runs:
        table.add_row(
            run.name,
            f"{run.calls:,}",
            f"{naive:,}",
            f"{run.ideal_s:.2f}",
            f"{run.seconds:.2f}",
            f"{run.seconds / run.ideal_s:.2f}",
            "" if run.prefix_share is None else f"{run.prefix_share:.3f}",
        )
    return table


if __name__ == "__main__":
    main()
