"""The shared chat client against the real OpenAI stub over HTTP on 127.0.0.1.

Balancing, retries, ejection and deadlines are exercised through `QAClient` in
`tests/qa/test_client.py`; here: what `chat` sends and returns, its own error type and metrics,
and that the answering client is built on it.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from tests.support.openai_stub import openai_stub

from trivia.llm import ChatClient, ChatReply, LLMError
from trivia.llm.errors import QAError
from trivia.qa.client import QAClient

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}
MESSAGES = [{"role": "user", "content": "Say hi."}]


def _llm_calls(endpoint: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "trivia_llm_calls_total", {"endpoint": endpoint, "status": status}
    )
    return value or 0.0


def test_chat_returns_text_finish_reason_model_and_usage():
    with openai_stub(answer="hello there") as stub:

        async def go():
            async with ChatClient(stub.url) as client:
                return await client.chat(MESSAGES, temperature=0.7, max_tokens=12)

        reply = asyncio.run(go())
        assert isinstance(reply, ChatReply)
        assert reply.text == "hello there" and reply.finish_reason == "stop"
        assert reply.model == "trivia-stub"
        assert reply.usage is not None and reply.usage["completion_tokens"] >= 1
        (record,) = stub.records()
        assert record["temperature"] == 0.7 and record["max_tokens"] == 12
        assert record["messages"] == MESSAGES


def test_no_template_kwargs_by_default_and_body_overrides_extra_body():
    with openai_stub(answer="a") as stub:

        async def go():
            async with ChatClient(stub.url, model="m", extra_body={"top_k": 1}) as client:
                await client.chat(MESSAGES)
                await client.chat(
                    MESSAGES, chat_template_kwargs={"enable_thinking": True}, max_tokens=3
                )

        asyncio.run(go())
        first, second = stub.records()
        assert first["chat_template_kwargs"] is None and first["max_tokens"] == 64
        assert second["chat_template_kwargs"] == {"enable_thinking": True}
        assert second["max_tokens"] == 3


def test_failures_raise_llmerror_and_are_counted_under_llm_metrics():
    with openai_stub(failure="503", retry_after_s=None) as stub:
        before = _llm_calls(stub.url, "503")

        async def go():
            async with ChatClient(stub.url, model="m", max_retries=2, **FAST) as client:
                await client.chat(MESSAGES)

        with pytest.raises(LLMError) as caught:
            asyncio.run(go())
        assert not isinstance(caught.value, QAError)
        assert caught.value.kind == "http" and caught.value.status_code == 503
        assert "LLM call to" in str(caught.value) and "3 attempts" in str(caught.value)
        assert _llm_calls(stub.url, "503") - before == 3


def test_a_reply_without_choices_is_a_bad_response_and_not_retried():
    body = b'{"object": "chat.completion", "choices": []}'
    response = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
    served = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        served.append(1)
        writer.write(response % (len(body), body))
        await writer.drain()
        writer.close()

    async def go():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with server, ChatClient(url, model="m", **FAST) as client:
            await client.chat(MESSAGES)

    with pytest.raises(LLMError) as caught:
        asyncio.run(go())
    assert caught.value.kind == "bad_response" and len(served) == 1


def test_the_answering_client_holds_a_chat_client_and_raises_qaerror():
    with openai_stub(failure="400") as stub:

        async def go():
            async with QAClient(stub.url, model="m") as client:
                assert isinstance(client.client, ChatClient)
                await client.answer("<table></table>", "q?")

        with pytest.raises(QAError) as caught:
            asyncio.run(go())
        assert isinstance(caught.value, LLMError)
        assert "QA call to" in str(caught.value)


def test_whole_replies_only_retries_a_cut_or_empty_reply_then_fails_as_truncated():
    with openai_stub(answer="a long reply") as stub:

        async def go(**options):
            async with ChatClient(stub.url, model="m", max_retries=1, **FAST) as client:
                return await client.chat(MESSAGES, max_tokens=1, **options)

        cut = asyncio.run(go())  # as it came: the caller decides
        assert cut.text == "a lo" and cut.finish_reason == "length"
        with pytest.raises(LLMError) as caught:
            asyncio.run(go(whole=True))
        assert caught.value.kind == "truncated" and "2 attempts" in str(caught.value)
        assert [r["finish_reason"] for r in stub.records()] == ["length"] * 3


def test_concurrency_per_endpoint_is_shared_by_chat_calls():
    with openai_stub(latency_s=0.05, answer="a") as stub:

        async def go():
            async with ChatClient(stub.url, model="m", max_concurrency_per_endpoint=2) as client:
                return await asyncio.gather(*(client.chat(MESSAGES) for _ in range(6)))

        replies = asyncio.run(go())
        assert [r.text for r in replies] == ["a"] * 6
        assert stub.stats()["max_in_flight"] == 2
