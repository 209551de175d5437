"""SIGTERM to the gateway mid-request, under the stack supervisor: the request still completes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.support.reward_stack import stack_on_stub

from trivia.trainer.rewards import fetch_rewards

OTSL = "<fcel>Group<fcel>Weight<nl>\n<fcel>Control<fcel>72<nl>\n<fcel>Treated<fcel>68<nl>\n"
QA = [
    {"question": "What is the Weight of Control?", "answer": "72"},
    {"question": "What is the Weight of Treated?", "answer": "68"},
]
ANSWER_S = 7.0  # longer than uvicorn's usual 5 s graceful shutdown


def _wait_for(condition, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sigterm_drains_the_request_in_flight_and_the_supervisor_restarts_the_gateway(
    tmp_path, caplog: pytest.LogCaptureFixture
):
    items = [{"id": str(i), "completion": OTSL, "qa_pairs": QA} for i in range(3)]
    said: list[str] = []
    with stack_on_stub(
        tmp_path, env={"TRIVIA_REQUEST_DEADLINE_S": "30"}, say=said.append, latency_s=ANSWER_S
    ) as (stub, stack):
        stop = threading.Event()
        supervisor = threading.Thread(target=stack.supervise, args=(stop.is_set,), daemon=True)
        supervisor.start()
        gateway = next(child for child in stack.children if child.name == "gateway")
        first_pid = gateway.pid
        caplog.set_level(logging.WARNING, logger="trivia.trainer.rewards")
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(
                asyncio.run, fetch_rewards(stack.gateway_url, items, ["qa_f1"], timeout_s=60)
            )
            _wait_for(lambda: stub.stats()["calls"] >= 2, "the QA calls of the request")
            os.kill(first_pid, signal.SIGTERM)
            results = call.result(timeout=90)
        assert [r["qa_f1"] for r in results] == [1.0, 1.0, 1.0]
        # The gateway that got SIGTERM answered it: no retry was needed.
        assert not [r for r in caplog.records if "retry" in r.getMessage()]
        _wait_for(lambda: gateway.pid != first_pid, "the supervisor to restart the gateway")
        assert any(line.startswith("gateway exited") for line in said), said
        # A call sent while the new gateway starts is retried until it is served.
        again = asyncio.run(fetch_rewards(stack.gateway_url, items, ["qa_f1"], timeout_s=60))
        assert [r["qa_f1"] for r in again] == [1.0, 1.0, 1.0]
        stop.set()
        supervisor.join(10)
