"""Do `/healthz`, `/readyz` and `/metrics` stay quick while large reward requests arrive?

The local stack's gateway (token on, default limits) receives 4 authenticated 15 MB requests at
once, three times in a row (4,000 items each, every completion cut off, so no QA work: the cost
is reading, parsing, planning, answering and recording the body). Meanwhile the probes are
called in turn, one every 10 ms, from a process of their own; their latency is compared with the
same probes on the idle gateway, measured first in the same run. Goal: under 100 ms at worst
while the bodies arrive. The gateway reads such bodies in child processes
(`trivia.reward.body_pool`); the same run repeats the measurement with
`TRIVIA_BODY_PARSE_PROCESSES=0` (every body read in a thread of the gateway) for comparison.
Latency on a machine shared with other jobs depends on their load: the load average is printed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table as RichTable
from tests.support.openai_stub import openai_stub

from trivia.ports import free_port_block
from trivia.reward.stack import Stack, StackConfig

TOKEN = "bench-token"
BODIES = 4
ROUNDS = 3
BODY_MB = 15
GOAL_MS = 100.0
PROBES = ("/healthz", "/readyz", "/metrics")
IDLE_S = 3.0
# The gateway starts its body-pool processes in the background; each imports the `trivia`
# command it was started by (a few seconds of CPU on a loaded 2-core machine).
SETTLE_S = 10.0
# name, extra gateway environment
SETUPS = (
    ("pool", {}),  # the default: large bodies read in the body pool
    ("threads", {"TRIVIA_BODY_PARSE_PROCESSES": "0"}),
)

Latencies = dict[str, list[float]]


def _body() -> bytes:
    completion = "<fcel>" + "x" * 3700  # no row terminator: invalid, no QA call
    items = [{"id": str(i), "completion": completion} for i in range(4000)]
    raw = json.dumps({"items": items}).encode()
    assert len(raw) > BODY_MB * 1_000_000 * 0.95, len(raw)
    return raw


def _probe(url: str, started: Event, stop: Event, conn: Connection) -> None:
    """Call the probes in turn until `stop`; send back their latencies (ms, by path)."""
    out: Latencies = {path: [] for path in PROBES}
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            for path in PROBES:
                began = time.perf_counter()
                response = client.get(f"{url}{path}")
                out[path].append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}")
                time.sleep(0.01)
            started.set()
    conn.send(out)


class Prober:
    """The probes in a process of their own: the senders' threads do not delay them here."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._started, self._stop = context.Event(), context.Event()
        self._results, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_probe, args=(url, self._started, self._stop, sender), daemon=True
        )

    def __enter__(self) -> Prober:
        self._process.start()
        if not self._started.wait(60):
            raise RuntimeError("the prober did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.latencies: Latencies = self._results.recv() if exc[0] is None else {}
        self._process.join(30)


def measure(env: dict[str, str] | None = None) -> tuple[Latencies, Latencies, float]:
    """Probe latencies (ms, by path) idle and under load, and the seconds 4 requests took."""
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
                env={"TRIVIA_API_TOKEN": TOKEN, **(env or {})},
            ),
            say=lambda line: None,
        ) as stack,
    ):
        time.sleep(SETTLE_S)
        with Prober(stack.gateway_url) as idle:
            time.sleep(IDLE_S)

        def post() -> None:
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            with httpx.Client(timeout=300) as client:
                response = client.post(
                    f"{stack.gateway_url}/v1/rewards", content=raw, headers=headers
                )
            response.raise_for_status()

        with Prober(stack.gateway_url) as loaded:
            started = time.perf_counter()
            for _ in range(ROUNDS):
                senders = [threading.Thread(target=post) for _ in range(BODIES)]
                for sender in senders:
                    sender.start()
                for sender in senders:
                    sender.join()
            seconds = (time.perf_counter() - started) / ROUNDS
    return idle.latencies, loaded.latencies, seconds


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, round(0.99 * len(ordered)) - 1)]


def main() -> None:
    console = Console(width=max(Console().width, 120))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    table = RichTable(
        title=f"Probes while {BODIES} x {BODY_MB} MB reward requests arrive, {ROUNDS} times "
        f"(goal: worst < {GOAL_MS:g} ms)"
    )
    columns = ("gateway", "probe", "phase", "probes", "median ms", "p99 ms", "worst ms", "goal")
    for column in columns:
        table.add_column(column, justify="right")
    lines = []
    for name, env in SETUPS:
        idle, loaded, seconds = measure(env)
        for path in PROBES:
            for phase, values in (("idle", idle[path]), (f"{BODIES} bodies", loaded[path])):
                worst = max(values)
                table.add_row(
                    name,
                    path,
                    phase,
                    str(len(values)),
                    f"{statistics.median(values):.1f}",
                    f"{p99(values):.1f}",
                    f"{worst:.1f}",
                    "yes" if worst < GOAL_MS else "NO",
                )
        healthz_idle, healthz_loaded = idle["/healthz"], loaded["/healthz"]
        lines.append(
            f"{name}: {BODIES} requests took {seconds:.1f} s; /healthz worst "
            f"{max(healthz_loaded):.1f} ms (idle {max(healthz_idle):.1f}, "
            f"{max(healthz_loaded) / max(healthz_idle):.1f}x), p99 {p99(healthz_loaded):.1f} ms "
            f"(idle {p99(healthz_idle):.1f}); goal: worst < {GOAL_MS:g} ms"
        )
    console.print(table)
    for line in lines:
        console.print(line)
    after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(
        f"load average (1 min) {load:.1f} before, {after:.1f} after, on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
