"""The lookup answerer's OpenAI-compatible server, served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from tests.support.tables import span_bomb

from trivia.ports import free_port
from trivia.qa.client import QAClient
from trivia.qa.prompts import build_messages
from trivia.qa.server import LOOKUP_MODEL, create_app

TABLE = (
    "<table><tr><td>Group</td><td>Weight</td></tr>"
    "<tr><td>Control</td><td>72</td></tr><tr><td>Treated</td><td>68</td></tr></table>"
)


@pytest.fixture(scope="module")
def server_url():
    port = free_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _chat(url: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)


def test_models_lists_the_lookup_model_and_says_it_is_a_heuristic(server_url):
    (card,) = httpx.get(f"{server_url}/v1/models").json()["data"]
    assert card["id"] == LOOKUP_MODEL and card["object"] == "model"
    assert "heuristic" in card["description"]


def test_chat_completion_answers_from_the_table(server_url):
    reply = _chat(
        server_url,
        model="whatever",
        messages=build_messages(TABLE, "What is the Weight of Treated?"),
        temperature=0,
        max_tokens=64,
        chat_template_kwargs={"enable_thinking": False},
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "chat.completion" and body["model"] == "whatever"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "<answer>68</answer>"}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_list_form_content_is_read_as_text(server_url):
    messages = build_messages(TABLE, "What is the Weight of Control?")
    messages[1] = {"role": "user", "content": [{"type": "text", "text": messages[1]["content"]}]}
    reply = _chat(server_url, messages=messages)
    assert reply.json()["choices"][0]["message"]["content"] == "<answer>72</answer>"


def test_foreign_prompts_are_not_answerable(server_url):
    reply = _chat(server_url, messages=[{"role": "user", "content": "Hello"}])
    assert reply.json()["choices"][0]["message"]["content"] == "<answer>Not answerable</answer>"


@pytest.mark.parametrize(
    "body",
    [{}, {"messages": []}, {"messages": "x"}, {"messages": [{"content": "no role"}]}],
)
def test_bad_requests_are_422(server_url, body):
    assert _chat(server_url, **body).status_code == 422


def test_streaming_is_refused(server_url):
    reply = _chat(server_url, messages=build_messages(TABLE, "q"), stream=True)
    assert reply.status_code == 400


def test_health_and_metrics(server_url):
    assert httpx.get(f"{server_url}/health").json() == {"status": "ok"}
    _chat(server_url, messages=build_messages(TABLE, "What is the Weight of Control?"))
    metrics = httpx.get(f"{server_url}/metrics").text
    assert 'trivia_qa_lookup_answers_total{outcome="answered"}' in metrics


def test_the_qa_client_works_against_it(server_url):
    async def go():
        async with QAClient(f"{server_url}/v1") as client:
            answers = await client.answer_many(
                TABLE, ["What is the Weight of Control?", "What is the Weight of Treated?"]
            )
            return answers, await client.model_name()

    answers, model = asyncio.run(go())
    assert answers == ["<answer>72</answer>", "<answer>68</answer>"]
    assert model == LOOKUP_MODEL


def test_trivia_qa_serve_runs_the_lookup_server():
    port = free_port()
    trivia = Path(sys.executable).with_name("trivia")
    command = [str(trivia), "qa", "serve", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        reply = _chat(url, messages=build_messages(TABLE, "What is the Weight of Treated?"))
        assert reply.json()["choices"][0]["message"]["content"] == "<answer>68</answer>"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(10) in (0, -signal.SIGTERM)
        if proc.stderr:
            proc.stderr.close()


def test_a_table_whose_spans_explode_gets_a_422_naming_the_bound(server_url):
    reply = _chat(server_url, messages=build_messages(span_bomb(), "What is the x of x?"))
    assert reply.status_code == 422
    assert "slots after spans (limit 100,000)" in reply.json()["detail"]
    assert httpx.get(f"{server_url}/health").status_code == 200
