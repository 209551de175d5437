"""The runner's loop with a job that needs no server: skips, unreadable inputs, pause and abort."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trivia.engine.runner import EXIT_FAILED, EXIT_OK, Outcome, Unreadable, run_job
from trivia.engine.store import ResultStore
from trivia.llm.errors import LLMError


class CountingJob:
    """Items are ints; the server is "down" while `down` is set; negative items are unreadable.

    `probe` is the runner's health probe: the server is back at the `back_at_probe`th (never
    when None).
    """

    def __init__(self, back_at_probe: int | None = None) -> None:
        self.down = False
        self.ran: list[int] = []
        self.probes = 0
        self.back_at_probe = back_at_probe

    async def probe(self) -> bool:
        self.probes += 1
        if self.probes == self.back_at_probe:
            self.down = False
        return not self.down

    def name(self, item: int) -> str:
        return f"item {item}"

    def identity(self, item: int) -> str:
        return f"id-{item}"

    async def key(self, item: int) -> str:
        if item < 0:
            raise Unreadable("negative")
        return f"key-{item}"

    async def run(self, item: int, key: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        if self.down:
            raise LLMError("server down")
        self.ran.append(item)
        return {"value": item}


def _run(job, items, store, **options):
    return asyncio.run(run_job(job, items, store, workers=3, **options))


def _run_into_outage(
    job: CountingJob, items, store, goes_down: Callable[[Outcome], bool], **options
):
    """`_run` with the server going down once a done item's outcome satisfies `goes_down`."""

    def outcome(result: Outcome) -> None:
        if result.status == "done" and goes_down(result):
            job.down = True

    return _run(
        job, items, store, on_outcome=outcome, probe=job.probe, probe_every_s=0.0, **options
    )


def test_a_server_that_comes_back_after_probing_finishes_the_run(tmp_path: Path) -> None:
    job = CountingJob(back_at_probe=3)
    with ResultStore(tmp_path / "s.jsonl") as store:
        summary = _run_into_outage(
            job, range(40), store, lambda result: result.record["value"] == 4,
            abort_after=2, probe_for_s=60.0,
        )  # fmt: skip
        assert summary.aborted is None and job.probes == 3
        assert summary.done + len(summary.failed) == 40 and len(store) == summary.done
        assert len(summary.failed) <= 4  # only the calls in flight when it went down
    assert summary.exit_code == EXIT_FAILED


def test_a_server_that_stays_down_aborts_and_takes_no_more_items(tmp_path: Path) -> None:
    job = CountingJob()
    with ResultStore(tmp_path / "s.jsonl") as store:
        summary = _run_into_outage(
            job, range(1000), store, lambda _: len(job.ran) == 5, abort_after=3, probe_for_s=0.0
        )
        assert summary.aborted and "did not answer" in summary.aborted
        assert len(store) == summary.done >= 5
        assert summary.done + len(summary.failed) < 20  # the other items were not taken


def test_finished_items_are_skipped_and_unreadable_ones_remembered(tmp_path: Path) -> None:
    job = CountingJob()
    with (
        ResultStore(tmp_path / "s.jsonl") as store,
        ResultStore(tmp_path / "failed.jsonl") as unreadable,
    ):
        first = _run(job, [1, 2, -1], store, unreadable=unreadable)
        again = _run(job, [1, 2, 3, -1], store, unreadable=unreadable)
    assert (first.done, len(first.unreadable)) == (2, 1)
    assert (again.done, again.skipped, len(again.unreadable)) == (1, 2, 1)
    assert again.unreadable[0].error == "recorded as unreadable in an earlier run"
    assert sorted(job.ran) == [1, 2, 3] and first.exit_code == 3
    with ResultStore(tmp_path / "other.jsonl") as other:
        assert _run(CountingJob(), [7], other).exit_code == EXIT_OK
