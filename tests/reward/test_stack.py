"""`trivia stack up`: prints its URLs, supervises, survives a Redis restart without losing work."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

from .test_rewards import grid, item, otsl, post


def test_prints_every_url_and_where_the_logs_are(stack):
    text = "".join(stack.output)
    assert f"gateway  {stack.url}" in text
    assert f"inspect  {stack.url}/inspect" in text
    assert f"redis    redis://:***@127.0.0.1:{stack.port + 2}/0" in text
    assert stack.redis_url.split("@")[0].split(":")[-1] not in text  # the password is not shown
    assert f"worker-1 http://127.0.0.1:{stack.port + 11}/metrics" in text
    assert "logs" in text


def test_worker_ports_serve_probes_and_metrics(stack):
    import httpx

    from trivia.reward.metrics import JOB_OUTCOMES

    with httpx.Client(base_url=f"http://127.0.0.1:{stack.port + 10}", timeout=5) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        text = client.get("/metrics").text
    # Every outcome's series, whether or not a job has had it yet (alerts rate() on them).
    for outcome in JOB_OUTCOMES:
        assert f'trivia_jobs_total{{outcome="{outcome}"}}' in text
    assert 'trivia_answer_cache_total{result="miss"}' in text


def test_redis_restarted_mid_request_loses_nothing(stack, stub):
    stub.configure(latency_s=0.5, slots=64)
    items = [item(f"t{i}", otsl(grid(uuid.uuid4().hex[:8]))) for i in range(4)]
    redis = stack.redis()
    pid = redis.info("server")["process_id"]
    redis.close()
    out: dict = {}
    request = threading.Thread(target=lambda: out.update(results=post(stack, items)))
    request.start()
    while stub.stats()["in_flight"] == 0:  # until jobs are queued and running
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)  # the stack restarts it; the AOF brings the queue back
    request.join(30)
    assert not request.is_alive()
    results = out["results"]
    assert [r["qa_f1"] for r in results] == [1.0] * len(items), results
    redis = stack.redis()
    assert redis.info("server")["process_id"] != pid
    redis.close()
    stack.wait_ready()
