"""The QA client against a real OpenAI-compatible server: `swift deploy` serving a tiny Qwen3."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest

pytest.importorskip("swift", reason="needs the train extra (ms-swift)")

from trivia.ports import free_port_block
from trivia.qa.client import QAClient
from trivia.trainer.tiny_model import build_tiny_qwen3

TABLE = "<fcel>Group<fcel>Weight<nl>\n<fcel>Control<fcel>72<nl>\n"


@pytest.fixture(scope="module")
def swift_server(tmp_path_factory):
    model = build_tiny_qwen3(tmp_path_factory.mktemp("qwen3") / "model")
    port = free_port_block(size=1)
    argv = [sys.executable, "-m", "swift.cli.deploy", "--model", str(model)]
    argv += ["--model_type", "qwen3", "--template", "qwen3", "--infer_backend", "pt"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--max_batch_size", "8"]
    argv += ["--served_model_name", "tiny-qwen3"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    log = (tmp_path_factory.mktemp("deploy") / "deploy.log").open("w")
    server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert server.poll() is None, f"swift deploy exited; see {log.name}"
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"swift deploy not ready; see {log.name}"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def test_client_asks_a_real_server(swift_server):
    async def ask() -> tuple[str, list]:
        async with QAClient(swift_server, max_tokens=8, request_timeout_s=60) as client:
            name = await client.model_name()
            answers = await client.answer_many(TABLE, ["What is the Weight of Control?"] * 4)
            return name, answers

    name, answers = asyncio.run(ask())
    assert name == "tiny-qwen3"
    assert len(answers) == 4
    # Random text: a whole reply is the answer; one cut at max_tokens is a "truncated" failure.
    assert all(isinstance(a, str) or a.kind == "truncated" for a in answers), answers


def test_client_reports_a_wrong_model_as_an_error(swift_server):
    from trivia.llm.errors import QAError

    async def ask() -> list:
        async with QAClient(swift_server, model="no-such-model", max_retries=0) as client:
            return await client.answer_many(TABLE, ["What is the Weight of Control?"])

    (answer,) = asyncio.run(ask())
    assert isinstance(answer, QAError)
