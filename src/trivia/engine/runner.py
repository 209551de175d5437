"""The one resumable work loop of the data engine: `sample`, `eval` and `qa` are jobs on it.

A `Job` says how to name an item, key it (the input and every setting that changes its result)
and do it (a record). `run_job` streams the items through a bounded queue to `workers` tasks:

- a key already in the `ResultStore` is skipped, a finished record is written at once (durable),
  so a re-run does only what is missing and a kill loses nothing written;
- an input that cannot be read (`Unreadable`: corrupt, empty, not an image) is recorded once in
  the `unreadable` store with the reason and skipped on later runs until the file changes;
- a server failure (`LLMError` after the client's retries) leaves the item for the next run;
  after `abort_after` failures in a row (every endpoint down) the loop pauses, probes the server
  every `probe_every_s` for up to `probe_for_s`, and resumes when it answers or aborts, taking
  no new items and keeping everything already written.

`RunSummary.exit_code` is what a command exits with: 0 all done, 3 done with unreadable inputs
skipped, 1 server failures remain or the run was aborted.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from trivia.engine.store import ResultStore, work_key
from trivia.llm.errors import LLMError
from trivia.settings import ENGINE

EXIT_OK, EXIT_FAILED, EXIT_UNREADABLE = 0, 1, 3
Status = Literal["done", "skipped", "failed", "unreadable"]
T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Unreadable(Exception):
    """The input itself is unusable (corrupt, empty, not an image): retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one item; `record` is the store record (done or skipped)."""

    name: str
    status: Status
    record: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class RunSummary:
    """Counts of one run, the items that failed or were unreadable, and why it stopped early."""

    done: int = 0
    skipped: int = 0
    failed: list[Outcome] = field(default_factory=list)
    unreadable: list[Outcome] = field(default_factory=list)
    aborted: str | None = None

    def add(self, outcome: Outcome) -> None:
        if outcome.status == "done":
            self.done += 1
        elif outcome.status == "skipped":
            self.skipped += 1
        elif outcome.status == "unreadable":
            self.unreadable.append(outcome)
        else:
            self.failed.append(outcome)

    @property
    def exit_code(self) -> int:
        if self.failed or self.aborted:
            return EXIT_FAILED
        return EXIT_UNREADABLE if self.unreadable else EXIT_OK


class Job(Protocol[T_contra]):
    """One kind of work: how to name, identify, key and do an item."""

    def name(self, item: T_contra) -> str:
        """How reports and `failed.jsonl` name the item (its path or table name)."""
        ...

    def identity(self, item: T_contra) -> str | None:
        """A cheap id of the input as it is now (`file_identity`), or None when it cannot be
        unreadable; an unreadable input is remembered under it."""
        ...

    async def key(self, item: T_contra) -> str:
        """The resume key; raises `Unreadable`."""
        ...

    async def run(self, item: T_contra, key: str) -> dict[str, Any]:
        """The record (without its key); raises `LLMError` or `Unreadable`."""
        ...


def file_identity(path: Path) -> str:
    """The path with its size and modification time: changes when the file is replaced."""
    try:
        stat = os.stat(path)
    except OSError:
        return work_key("missing", str(path))
    return work_key(str(path), stat.st_size, stat.st_mtime_ns)


@dataclass
class _Health:
    """Consecutive server failures, and the gate that pauses every worker while probing."""

    abort_after: int | None
    failures_in_row: int = 0
    open: asyncio.Event = field(default_factory=asyncio.Event)
    probing: bool = False


async def run_job(
    job: Job[T],
    items: Iterable[T],
    store: ResultStore,
    *,
    unreadable: ResultStore | None = None,
    workers: int = 8,
    on_outcome: Callable[[Outcome], None] | None = None,
    abort_after: int | None = None,
    probe: Callable[[], Awaitable[bool]] | None = None,
    probe_every_s: float = 5.0,
    probe_for_s: float = ENGINE.probe_for_s,
) -> RunSummary:
    """Do every item of `items` not yet in `store`; see the module docstring."""
    summary = RunSummary()
    queue: asyncio.Queue[tuple[T] | None] = asyncio.Queue(maxsize=max(1, workers) * 2)
    health = _Health(abort_after)
    health.open.set()
    stop = asyncio.Event()

    async def feed() -> None:
        for item in items:
            if stop.is_set():
                break
            await queue.put((item,))
        for _ in range(max(1, workers)):
            await queue.put(None)

    async def recover(reason: str) -> None:
        """Pause everyone, probe until the server answers or the bound passes."""
        health.probing = True
        health.open.clear()
        deadline = time.monotonic() + probe_for_s
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(probe_every_s)
                if probe is not None and await probe():
                    health.failures_in_row = 0
                    return
            summary.aborted = (
                f"{health.failures_in_row} calls failed in a row ({reason}) and the server did "
                f"not answer for {probe_for_s:g} s: aborted; finished work is kept, re-run to go on"
            )
            stop.set()
        finally:
            health.probing = False
            health.open.set()

    async def one(item: T) -> Outcome:
        name = job.name(item)
        identity = job.identity(item)
        if unreadable is not None and identity is not None and unreadable.done(identity):
            return Outcome(name, "unreadable", error="recorded as unreadable in an earlier run")
        try:
            key = await job.key(item)
            if store.done(key):
                return Outcome(name, "skipped", store.get(key))
            record = {"key": key, **await job.run(item, key)}
        except Unreadable as exc:
            if unreadable is not None and identity is not None:
                unreadable.write({"key": identity, "name": name, "reason": str(exc)})
            return Outcome(name, "unreadable", error=str(exc))
        except LLMError as exc:
            return Outcome(name, "failed", error=str(exc))
        store.write(record)
        return Outcome(name, "done", record)

    async def worker() -> None:
        while True:
            entry = await queue.get()
            if entry is None:
                return
            await health.open.wait()
            if stop.is_set():
                continue  # drain without working
            outcome = await one(entry[0])
            if outcome.status == "failed":
                health.failures_in_row += 1
                if (
                    health.abort_after is not None
                    and health.failures_in_row >= health.abort_after
                    and not health.probing
                    and not stop.is_set()
                ):
                    await recover(outcome.error or "server failure")
            elif outcome.status == "done":
                health.failures_in_row = 0
            summary.add(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

    await asyncio.gather(feed(), *(worker() for _ in range(max(1, workers))))
    return summary
