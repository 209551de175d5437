"""Does `/healthz` stay quick while large reward requests arrive?

The local stack's gateway (token on, default limits) receives 4 authenticated 15 MB requests at
once (4,000 items each, every completion cut off, so no QA work: the cost is reading, parsing and
planning the body). Meanwhile `/healthz` is called every 10 ms; its latency is compared with the
same probe on the idle gateway, measured in the same run. Goal: under 100 ms at worst while the
bodies arrive (the body is parsed in a worker thread, not on the event loop).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table as RichTable
from tests.support.openai_stub import openai_stub

from trivia.ports import free_port_block
from trivia.reward.stack import Stack, StackConfig

TOKEN = "bench-token"
BODIES = 4
BODY_MB = 15
GOAL_MS = 100.0


def _body() -> bytes:
    completion = "<fcel>" + "x" * 3700  # no row terminator: invalid, no QA call
    items = [{"id": str(i), "completion": completion} for i in range(4000)]
    raw = json.dumps({"items": items}).encode()
    assert len(raw) > BODY_MB * 1_000_000 * 0.95, len(raw)
    return raw


def _probe(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(f"{url}/healthz").raise_for_status()
            out.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)


def measure() -> tuple[list[float], list[float], float]:
    """Probe latencies (ms) idle and under load, and the seconds the 4 requests took."""
    raw = _body()
    with (
        tempfile.TemporaryDirectory() as tmp,
        openai_stub() as stub,
        Stack(
            StackConfig(
                port=free_port_block(),
                workers=1,
                qa_urls=[f"{stub.url}/v1"],
                data_dir=Path(tmp),
                env={"TRIVIA_API_TOKEN": TOKEN},
            ),
            say=lambda line: None,
        ) as stack,
    ):
        idle: list[float] = []
        stop = threading.Event()
        prober = threading.Thread(target=_probe, args=(stack.gateway_url, stop, idle))
        prober.start()
        time.sleep(2.0)
        stop.set()
        prober.join()

        loaded: list[float] = []
        stop = threading.Event()
        prober = threading.Thread(target=_probe, args=(stack.gateway_url, stop, loaded))
        prober.start()

        def post() -> None:
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            with httpx.Client(timeout=300) as client:
                response = client.post(
                    f"{stack.gateway_url}/v1/rewards", content=raw, headers=headers
                )
            response.raise_for_status()

        started = time.perf_counter()
        senders = [threading.Thread(target=post) for _ in range(BODIES)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        seconds = time.perf_counter() - started
        stop.set()
        prober.join()
    return idle, loaded, seconds


def main() -> None:
    idle, loaded, seconds = measure()
    table = RichTable(title=f"/healthz while {BODIES} x {BODY_MB} MB reward requests arrive")
    for column in ("", "probes", "median ms", "max ms", f"goal max < {GOAL_MS:g} ms"):
        table.add_column(column, justify="right")
    for name, values in (("idle", idle), ("under load", loaded)):
        worst = max(values)
        ok = "yes" if worst < GOAL_MS else "NO"
        table.add_row(
            name, str(len(values)), f"{statistics.median(values):.1f}", f"{worst:.1f}", ok
        )
    Console().print(table)
    Console().print(
        f"the {BODIES} requests took {seconds:.1f} s; worst probe under load / idle median = "
        f"{max(loaded) / statistics.median(idle):.1f}x"
    )


if __name__ == "__main__":
    main()
