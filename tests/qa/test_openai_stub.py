"""The stub OpenAI server behaves like vLLM: defaults, length finishes, overload, failures."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.support.openai_stub import GREEDY, StubConfig, openai_stub, prefix_share

from trivia.qa.prompts import build_messages

TABLE = "<table><tr><td>Group</td><td>Weight</td></tr><tr><td>A</td><td>72</td></tr></table>"


def _chat(url: str, question: str = "What is the Weight of A?", **extra) -> httpx.Response:
    body = {"model": "m", "messages": build_messages(TABLE, question), **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)


def test_speaks_the_openai_protocol_with_lookup_answers():
    with openai_stub() as stub:
        assert httpx.get(f"{stub.url}/health").json() == {"status": "ok"}
        models = httpx.get(f"{stub.url}/v1/models").json()
        assert models["data"][0]["id"] == "trivia-stub"
        reply = _chat(stub.url).json()
        assert reply["choices"][0]["message"] == {
            "role": "assistant",
            "content": "<answer>72</answer>",
        }
        assert reply["choices"][0]["finish_reason"] == "stop"
        assert reply["usage"]["total_tokens"] > 0
        assert stub.stats()["answered"] == 1


def test_fixed_answer_and_records_of_each_call():
    with openai_stub(answer="<answer>7</answer>") as stub:
        _chat(stub.url, chat_template_kwargs={"enable_thinking": False}, max_tokens=9)
        assert _chat(stub.url, "Other?").json()["choices"][0]["message"]["content"] == (
            "<answer>7</answer>"
        )
        first, second = stub.records()
        assert first["n"] == 1 and first["status"] == 200
        assert first["chat_template_kwargs"] == {"enable_thinking": False}
        assert first["max_tokens"] == 9
        assert first["messages"][1]["content"].endswith("What is the Weight of A?")
        assert first["table_key"] == second["table_key"]
        assert second["shared_prefix_chars"] < second["prompt_chars"]
        assert 0.5 < prefix_share(stub.records()) < 1.0


def test_prefix_share_is_the_common_part_of_each_tables_prompts():
    rows = [
        {"table_key": "t", "prompt_chars": 100, "shared_prefix_chars": 100},
        {"table_key": "t", "prompt_chars": 100, "shared_prefix_chars": 90},
        {"table_key": "u", "prompt_chars": 50, "shared_prefix_chars": 50},
        {"table_key": None, "prompt_chars": 10, "shared_prefix_chars": 0},
    ]
    assert prefix_share(rows) == pytest.approx((0.9 + 0.9 + 1.0) / 3)
    assert prefix_share([]) == 0.0


def _wait_for(condition, what: str) -> None:
    """Poll the stub's counters until `condition()` holds (the test's timeout bounds it)."""
    while not condition():
        time.sleep(0.01)


def test_slots_limit_concurrency_and_queue_the_rest():
    with openai_stub(latency_s=0.2, slots=2, answer="x") as stub:
        with ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(lambda i: _chat(stub.url, f"q{i}"), range(6)))
        assert all(r.status_code == 200 for r in replies)
        stats = stub.stats()
        assert stats["max_serving"] == 2  # never more than the slots at once
        assert stats["max_in_flight"] >= 3  # the others waited for a slot


def test_overload_beyond_the_waiting_room_answers_503():
    with openai_stub(latency_s=0.5, slots=1, max_waiting=0, answer="x") as stub:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(_chat, stub.url)
            _wait_for(lambda: stub.stats()["serving"] == 1, "the first call to hold the slot")
            busy = _chat(stub.url, "another?")
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert first.result().status_code == 200
        assert _chat(stub.url).status_code == 200  # the slot is free again


def test_unset_sampling_fields_come_from_the_models_generation_config():
    with openai_stub(answer="x") as stub:
        _chat(stub.url)
        _chat(stub.url, temperature=0.7, top_p=0.9, max_tokens=5)
        unset, given = stub.records()
        assert unset["temperature"] is None and unset["max_tokens"] is None
        assert unset["sampling"]["top_k"] == 1 and unset["sampling"]["temperature"] < 1e-3
        assert unset["sampling"]["max_tokens"] == 32768 - -(-unset["prompt_chars"] // 4)
        assert given["sampling"] | {} == {**GREEDY, "temperature": 0.7, "top_p": 0.9,
                                           "max_tokens": 5}  # fmt: skip


def test_a_reply_longer_than_max_tokens_stops_there_with_finish_length():
    with openai_stub(answer="<answer>72 kg</answer>") as stub:
        cut = _chat(stub.url, max_tokens=3).json()["choices"][0]
        assert cut["finish_reason"] == "length"
        assert cut["message"]["content"] == "<answer>72 k"  # 3 tokens of 4 characters
        whole = _chat(stub.url, max_tokens=6).json()["choices"][0]
        assert whole == {
            "index": 0,
            "message": {"role": "assistant", "content": "<answer>72 kg</answer>"},
            "finish_reason": "stop",
        }
        assert [r["finish_reason"] for r in stub.records()] == ["length", "stop"]


def test_a_prompt_past_the_context_length_is_a_400():
    with openai_stub(answer="x", max_model_len=64) as stub:
        reply = _chat(stub.url)
        assert reply.status_code == 400
        assert "maximum context length is 64" in reply.json()["error"]["message"]


def test_503_for_the_first_calls_then_answers():
    with openai_stub(failure="503", fail_first=2, retry_after_s=0.5) as stub:
        first = _chat(stub.url)
        assert first.status_code == 503 and first.headers["retry-after"] == "0.5"
        assert _chat(stub.url).status_code == 503
        assert _chat(stub.url).status_code == 200
        stats = stub.stats()
        assert stats["by_status"] == {"503": 2, "200": 1}
        assert [r["status"] for r in stub.records()] == [503, 503, 200]


@pytest.mark.parametrize("failure", ["429", "500", "400"])
def test_status_failures(failure):
    with openai_stub(failure=failure, retry_after_s=2) as stub:
        reply = _chat(stub.url)
        assert reply.status_code == int(failure)
        assert ("retry-after" in reply.headers) == (failure == "429")


def test_hang_never_answers():
    with openai_stub(failure="hang") as stub, pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{stub.url}/v1/chat/completions",
            json={"messages": build_messages(TABLE, "q")},
            timeout=httpx.Timeout(5, read=0.3),
        )


def test_close_drops_the_connection_without_an_answer():
    with openai_stub(failure="close") as stub, pytest.raises(httpx.RemoteProtocolError):
        _chat(stub.url)


def test_configure_and_reset_while_running():
    with openai_stub() as stub:
        assert stub.configure(failure="503")["failure"] == "503"
        assert _chat(stub.url).status_code == 503
        stub.configure(failure="none", answer="ok")
        assert _chat(stub.url).json()["choices"][0]["message"]["content"] == "ok"
        assert stub.stats()["calls"] == 2
        stub.reset()
        assert stub.stats()["calls"] == 0 and stub.records() == []
        with pytest.raises(httpx.HTTPStatusError):
            stub.configure(failure="teapot")
        with pytest.raises(httpx.HTTPStatusError):
            stub.configure(colour="blue")


def test_bad_requests_and_unknown_routes():
    with openai_stub() as stub:
        assert httpx.post(f"{stub.url}/v1/chat/completions", content=b"{").status_code == 400
        assert httpx.get(f"{stub.url}/v1/chat/completions").status_code == 405
        assert httpx.post(f"{stub.url}/v1/chat/completions", json={"x": 1}).status_code == 400
        assert httpx.get(f"{stub.url}/nowhere").status_code == 404


def test_keep_alive_serves_many_calls_on_one_connection():
    with openai_stub(answer="x") as stub, httpx.Client() as client:
        before = stub.stats()["connections"]  # the admin client's own connection
        for _ in range(5):
            assert client.get(f"{stub.url}/v1/models").status_code == 200
        assert stub.stats()["connections"] == before + 1


def test_stopped_stub_refuses_connections():
    with openai_stub() as stub:
        url = stub.url
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_runs_as_its_own_process():
    with openai_stub(StubConfig(latency_s=0.01), process=True, answer="p") as stub:
        assert _chat(stub.url).json()["choices"][0]["message"]["content"] == "p"
        assert stub.stats()["config"]["latency_s"] == 0.01


def test_config_is_checked():
    with pytest.raises(ValueError):
        StubConfig(failure="teapot")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        StubConfig(slots=-1)
