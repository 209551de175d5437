"""Workers: a SIGKILLed worker's job runs again within seconds and the request completes."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

from rq import Worker

from .test_rewards import PAIRS, grid, item, otsl, post


def busy_worker_pid(stack, timeout_s: float = 10.0) -> int:
    """The pid of a worker that is running a job right now."""
    redis = stack.redis()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for worker in Worker.all(connection=redis):
                if worker.get_current_job_id() and worker.pid:
                    return worker.pid
            time.sleep(0.02)
    finally:
        redis.close()
    raise TimeoutError("no worker became busy")


def test_a_worker_killed_mid_request_loses_no_item(stack, stub):
    stub.configure(latency_s=0.4, slots=64)
    items = [item(f"t{i}", otsl(grid(uuid.uuid4().hex[:8]))) for i in range(6)]
    out: dict = {}
    request = threading.Thread(target=lambda: out.update(results=post(stack, items)))
    started = time.monotonic()
    request.start()
    os.kill(busy_worker_pid(stack), signal.SIGKILL)
    request.join(30)
    took = time.monotonic() - started
    assert not request.is_alive()
    results = out["results"]
    assert [r["qa_f1"] for r in results] == [1.0] * len(items), results
    assert took < 10  # the request deadline; recovery takes the heartbeat TTL (3 s) + a sweep
    # Every table was answered (some twice: the killed job's calls may have been in flight).
    assert stub.stats()["answered"] >= len(items) * len(PAIRS)
    stack.wait_ready()
    assert "exited with -9; restarting" in (stack.data_dir / "stack.err").read_text()


def test_a_worker_refuses_any_job_but_the_scoring_job(stack, tmp_path):
    from rq import Queue
    from rq.job import JobStatus
    from rq.serializers import JSONSerializer

    from trivia.settings import Settings

    target = tmp_path / "made-by-a-job"
    redis = stack.redis()
    try:
        queue = Queue(Settings().queue_name, connection=redis, serializer=JSONSerializer)
        job = queue.enqueue("os.makedirs", str(target))
        deadline = time.monotonic() + 30
        while job.get_status(refresh=True) not in (JobStatus.FAILED, JobStatus.FINISHED):
            assert time.monotonic() < deadline, "the job was never picked up"
            time.sleep(0.05)
        assert job.get_status() == JobStatus.FAILED
        assert "refused: 'os.makedirs' is not trivia.reward.jobs.score_table" in str(
            job.latest_result().exc_string
        )
    finally:
        redis.close()
    assert not target.exists()
    logs = "".join(p.read_text() for p in (stack.data_dir / "logs").glob("worker-*.log"))
    assert "refused job" in logs and "os.makedirs" in logs


def test_a_worker_that_loses_redis_mid_job_carries_on_in_the_same_process(tmp_path):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from redis import Redis
    from redis.exceptions import RedisError
    from tests.support.openai_stub import openai_stub

    from trivia.ports import free_port_block
    from trivia.reward.stack import Stack, StackConfig
    from trivia.trainer.rewards import fetch_rewards

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def redis_answers(url: str) -> bool:
        try:
            return bool(Redis.from_url(url, socket_connect_timeout=0.5).ping())
        except RedisError:
            return False

    items = [item(f"t{i}", otsl(grid(uuid.uuid4().hex[:8]))) for i in range(2)]
    config = StackConfig(port=free_port_block(), workers=1, data_dir=tmp_path)
    with openai_stub(latency_s=1.0) as stub:
        config.qa_urls = [f"{stub.url}/v1"]
        # No supervisor runs here: a worker process that exited would stay gone.
        with Stack(config, say=lambda line: None) as stack:
            worker = next(child for child in stack.children if child.name == "worker-0")
            valkey = next(child for child in stack.children if child.name == "valkey")
            pid = worker.pid
            with ThreadPoolExecutor(1) as pool:
                call = pool.submit(
                    asyncio.run,
                    fetch_rewards(stack.gateway_url, items, ["qa_f1"], timeout_s=120),
                )
                wait_for(lambda: stub.stats()["calls"] >= 1, "the worker to start a job")
                os.kill(valkey.pid, signal.SIGKILL)
                valkey.process.wait()
                wait_for(lambda: stub.stats()["answered"] >= 1, "the job to need Redis again")
                valkey.start()
                wait_for(lambda: redis_answers(stack.redis_url), "Redis to come back")
                results = call.result(timeout=150)
            assert [r["qa_f1"] for r in results] == [1.0, 1.0], results
            assert not worker.exited() and worker.pid == pid
