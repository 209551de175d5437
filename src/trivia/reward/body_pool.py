"""Large request bodies are parsed in child processes, so `/healthz` answers while they arrive.

pydantic-core holds the GIL while it validates a body (about 130 ms for 15 MB), so a worker
thread does not free the event loop: the probes waited behind it. Bodies of at least
`body_parse_min_bytes` are read (`intake.read_request`: parse, caps, plan) by a small pool of
`body_parse_processes` processes, which send back only the jobs; the same processes read the
body again to render the response and to build and compress the inspector record, so the
request's items never exist as objects in the gateway (see `intake`). Smaller bodies stay in a
thread, where the round trips would cost more than they save.

The children are started with `spawn` (a fresh interpreter: none of the gateway's threads,
locks or connections), run at a lower priority (nice 10) so that the gateway's event loop gets
a CPU first, ignore SIGINT and SIGTERM (a signal to the whole process group must not kill a
parse the draining gateway still waits for), are shut down with the gateway, and are killed
by the kernel if it dies without doing so. A child that dies (out of memory) fails the request
it was reading with 503, and a new pool replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from trivia.reward import metrics
from trivia.reward.intake import (
    Accepted,
    AcceptedRaw,
    Limits,
    Refused,
    Rendered,
    read_request,
    read_request_raw,
    render,
)
from trivia.settings import Settings

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_NICENESS = 10
_PR_SET_PDEATHSIG = 1


class ParserUnavailable(Exception):
    """A child process died while it worked (the pool is replaced; the request may be retried)."""


def _child_setup(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A gateway killed outright (SIGKILL, OOM) cannot shut the pool down: go with it. (The
    # kernel sends this when the thread that started the child ends: the event loop's thread,
    # which starts and replaces the children and lives as long as the gateway.)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)
    # Parsing is bulk work: where CPUs are short, the event loop answering probes goes first.
    with contextlib.suppress(OSError):
        os.nice(_NICENESS)


def _ready() -> None:
    """Run once per child at start, so the first large body does not wait for a spawn."""


class BodyPool:
    """Reads request bodies in a thread or, when large, in a child process."""

    def __init__(self, settings: Settings) -> None:
        self.limits = Limits.of(settings)
        self.min_bytes = settings.body_parse_min_bytes
        self.processes = settings.body_parse_processes
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the children (in the background: the gateway serves meanwhile)."""
        if self.processes > 0 and self._pool is None:
            self._pool = self._new_pool()
            for _ in range(self.processes):
                self._pool.submit(_ready)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_setup,
            initargs=(os.getpid(),),
        )

    def is_large(self, size: int) -> bool:
        """Whether a body of `size` bytes is read in a child process."""
        return self._pool is not None and size >= self.min_bytes

    async def read(self, raw: bytes) -> Accepted | AcceptedRaw | Refused:
        """`intake.read_request` of `raw`, off the event loop (and off its GIL when large)."""
        if self.is_large(len(raw)):
            metrics.BODY_READS.labels("process").inc()
            read = await self.run(read_request_raw, raw, self.limits)
            return read if isinstance(read, Refused) else dataclasses.replace(read, raw=raw)
        metrics.BODY_READS.labels("thread").inc()
        return await run_in_threadpool(read_request, raw, self.limits)

    async def render(
        self, accepted: Accepted | AcceptedRaw, results: dict[int, dict[str, Any]], missing: str
    ) -> Rendered:
        """`intake.render`: where the request was read (a large one is read there again)."""
        if isinstance(accepted, AcceptedRaw):
            return await self.run(
                render, accepted.raw, self.limits, results, missing, keep_items=False
            )
        return await run_in_threadpool(render, accepted, self.limits, results, missing)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in a child process (arguments and result are pickled)."""
        pool = self._pool
        if pool is None:
            raise RuntimeError("the body pool is not started")
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, call)
        except BrokenProcessPool as exc:
            self._replace(pool)
            raise ParserUnavailable(
                "a body parser process died (out of memory?); the gateway started a new one"
            ) from exc

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is broken:
            log.error("body pool: a child process died; starting a new pool")
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self.start()

    async def close(self) -> None:
        """Stop the children once their work is done (after the requests have drained)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
