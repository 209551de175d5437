"""The QA client against real stub servers over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import warnings

import pytest
from prometheus_client import REGISTRY
from tests.support.openai_stub import openai_stub

from trivia.llm.endpoints import parse_endpoints
from trivia.llm.errors import QAError
from trivia.ports import free_port
from trivia.qa.client import QAClient

TABLE = (
    "<table><tr><td>Group</td><td>Weight</td><td>Height</td></tr>"
    "<tr><td>Control</td><td>72</td><td>170</td></tr>"
    "<tr><td>Treated</td><td>68</td><td>165</td></tr></table>"
)
QUESTION = "What is the Weight of Treated?"
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}


def run(coro):
    return asyncio.run(coro)


class Clock:
    """The time ejections are measured by, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def until(condition) -> None:
    """Wait, letting the event loop run, until `condition()` (a blocking call) holds."""
    while not await asyncio.to_thread(condition):
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def raw_server(response: bytes):
    """A server on 127.0.0.1 that answers every request with `response` (bytes as sent), then
    closes the connection."""
    served = {"requests": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            served["requests"] += 1
            writer.write(response)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", served


def _calls(endpoint: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "trivia_qa_calls_total", {"endpoint": endpoint, "status": status}
    )
    return value or 0.0


def test_answers_with_the_raw_completion_and_sends_the_right_request():
    with openai_stub() as stub:

        async def go():
            async with QAClient(stub.url, api_key="sk-secret", max_tokens=32) as client:
                return await client.answer(TABLE, QUESTION)

        assert run(go()) == "<answer>68</answer>"
        (record,) = stub.records()
        assert record["model"] == "trivia-stub"  # discovered from /v1/models
        assert record["temperature"] == 0 and record["max_tokens"] == 32
        assert record["chat_template_kwargs"] == {"enable_thinking": False}
        assert record["authorization"] == "Bearer sk-secret"
        assert record["messages"][1]["content"].endswith(QUESTION)


def test_model_is_discovered_once_or_taken_as_given():
    with openai_stub(answer="a") as stub:

        async def go(model):
            async with QAClient(stub.url, model=model) as client:
                await client.answer_many(TABLE, ["q1", "q2", "q3"])
                return await client.model_name()

        assert run(go(None)) == "trivia-stub"
        assert stub.stats()["models_calls"] == 1
        assert run(go("my-model")) == "my-model"
        assert stub.stats()["models_calls"] == 1
        assert {r["model"] for r in stub.records()} == {"trivia-stub", "my-model"}


def test_extra_body_replaces_the_default():
    with openai_stub(answer="a") as stub:

        async def go():
            async with QAClient(stub.url, model="m", extra_body={"top_k": 1}) as client:
                await client.answer(TABLE, QUESTION)

        run(go())
        assert stub.records()[0]["chat_template_kwargs"] is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://h:8000", ["http://h:8000"]),
        ("http://h:8000/v1/", ["http://h:8000"]),
        ("h:8000/v1, http://g:9/", ["http://h:8000", "http://g:9"]),
        (["http://a:1", "http://b:2,http://c:3"], ["http://a:1", "http://b:2", "http://c:3"]),
        ("https://x.example/api/v1", ["https://x.example/api"]),
    ],
)
def test_endpoint_forms(given, expected):
    assert parse_endpoints(given) == expected


@pytest.mark.parametrize("given", ["", " , ", [], "ftp://h:1"])
def test_endpoint_errors(given):
    with pytest.raises(ValueError):
        parse_endpoints(given)


def test_answer_many_keeps_order():
    with openai_stub(latency_s=0.01) as stub:

        async def go():
            async with QAClient(stub.url) as client:
                questions = [
                    f"What is the {c} of {r}?"
                    for r in ("Control", "Treated")
                    for c in ("Weight", "Height")
                ]
                return await client.answer_many(TABLE, questions)

        assert run(go()) == [
            "<answer>72</answer>",
            "<answer>170</answer>",
            "<answer>68</answer>",
            "<answer>165</answer>",
        ]


def test_concurrency_limit_per_endpoint_is_respected():
    with openai_stub(latency_s=0.05, answer="a") as stub:

        async def go():
            async with QAClient(stub.url, model="m", max_concurrency_per_endpoint=3) as client:
                return await client.answer_many(TABLE, [f"q{i}" for i in range(15)])

        assert run(go()) == ["a"] * 15
        assert stub.stats()["max_in_flight"] == 3  # never more at once; the rest waited


def test_balances_evenly_across_equal_endpoints():
    with openai_stub(latency_s=0.02, answer="a") as one, openai_stub(latency_s=0.02) as two:
        two.configure(answer="a")

        async def go():
            async with QAClient([one.url, two.url], model="m", table_affinity=False) as client:
                return await client.answer_many(TABLE, [f"q{i}" for i in range(40)])

        assert run(go()) == ["a"] * 40
        assert one.stats()["calls"] == two.stats()["calls"] == 20


def test_least_outstanding_sends_more_to_the_faster_endpoint():
    with (
        openai_stub(latency_s=0.2, answer="slow") as slow,
        openai_stub(latency_s=0.01, answer="fast") as fast,
    ):

        async def go():
            async with QAClient([slow.url, fast.url], model="m", table_affinity=False) as client:
                done = []

                async def worker(i):  # eight callers, one question at a time each
                    for j in range(8):
                        done.append(await client.answer(TABLE, f"q{i}-{j}"))

                await asyncio.gather(*(worker(i) for i in range(8)))
                stats = client.stats()
                return done, stats

        done, stats = run(go())
        assert len(done) == 64
        assert fast.stats()["calls"] > 3 * slow.stats()["calls"]
        assert [s.outstanding for s in stats] == [0, 0]
        assert sum(s.ok for s in stats) == 64


def test_retries_503_then_succeeds_and_counts_each_attempt():
    with openai_stub(failure="503", fail_first=2, retry_after_s=None, answer="ok") as stub:
        before_503, before_200 = _calls(stub.url, "503"), _calls(stub.url, "200")

        async def go():
            async with QAClient(stub.url, model="m", **FAST) as client:
                return await client.answer(TABLE, QUESTION)

        assert run(go()) == "ok"
        assert stub.stats()["calls"] == 3
        assert _calls(stub.url, "503") - before_503 == 2
        assert _calls(stub.url, "200") - before_200 == 1
        assert REGISTRY.get_sample_value("trivia_qa_latency_seconds_count", {"endpoint": stub.url})


def test_429_waits_as_long_as_retry_after_asks():
    with openai_stub(failure="429", fail_first=1, retry_after_s=0.4, answer="ok") as stub:

        async def go():
            async with QAClient(stub.url, model="m", **FAST) as client:
                start = time.monotonic()
                answer = await client.answer(TABLE, QUESTION)
                return answer, time.monotonic() - start

        answer, elapsed = run(go())
        assert answer == "ok" and elapsed >= 0.4
        first, second = stub.records()
        assert second["received_s"] - first["received_s"] >= 0.4


def test_always_503_raises_qaerror_after_the_retries():
    with openai_stub(failure="503", retry_after_s=None) as stub:

        async def go():
            async with QAClient(
                stub.url, model="m", api_key="sk-secret", max_retries=3, **FAST
            ) as client:
                await client.answer(TABLE, QUESTION)

        with pytest.raises(QAError) as caught:
            run(go())
        assert stub.stats()["calls"] == 4
        message = str(caught.value)
        assert stub.url in message and "503" in message and "4 attempts" in message
        assert "sk-secret" not in message and "sk-secret" not in repr(caught.value.__dict__)
        assert caught.value.status_code == 503 and caught.value.kind == "http"


def test_other_4xx_is_not_retried():
    with openai_stub(failure="400") as stub:

        async def go():
            async with QAClient(stub.url, model="m", **FAST) as client:
                await client.answer(TABLE, QUESTION)

        with pytest.raises(QAError, match="HTTP 400"):
            run(go())
        assert stub.stats()["calls"] == 1


def test_a_hanging_endpoint_hits_the_request_timeout():
    with openai_stub(failure="hang") as stub:

        async def go():
            async with QAClient(
                stub.url, model="m", request_timeout_s=0.2, max_retries=1, **FAST
            ) as client:
                await client.answer(TABLE, QUESTION)

        with pytest.raises(QAError) as caught:
            run(go())
        assert caught.value.kind == "timeout" and "0.2 s" in str(caught.value)
        assert "2 attempts" in str(caught.value)
        assert stub.stats()["calls"] == 2


def test_the_deadline_bounds_a_call_to_a_hanging_endpoint():
    with openai_stub(failure="hang") as stub:

        async def go():
            async with QAClient(stub.url, model="m", request_timeout_s=30) as client:
                return await client.answer_many(TABLE, ["a", "b"], deadline=time.monotonic() + 0.3)

        results = run(go())  # request_timeout_s=30: only the deadline can have ended them
        assert all(isinstance(r, QAError) and r.kind == "deadline" for r in results)
        assert stub.stats()["calls"] == 2


def test_a_passed_deadline_fails_at_once_without_calling():
    with openai_stub(answer="a") as stub:

        async def go():
            async with QAClient(stub.url, model="m") as client:
                await client.answer(TABLE, QUESTION, deadline=time.monotonic() - 1)

        with pytest.raises(QAError, match="deadline"):
            run(go())
        assert stub.stats()["calls"] == 0


def test_connection_refused_gives_qaerror():
    url = f"http://127.0.0.1:{free_port()}"

    async def go():
        async with QAClient(url, model="m", max_retries=2, **FAST) as client:
            await client.answer(TABLE, QUESTION)

    with pytest.raises(QAError) as caught:
        run(go())
    assert caught.value.kind == "connect" and url in str(caught.value)
    assert "cannot connect" in str(caught.value) and "3 attempts" in str(caught.value)


def test_model_discovery_failure_is_a_qaerror():
    url = f"http://127.0.0.1:{free_port()}"

    async def go():
        async with QAClient(url, max_retries=0) as client:
            await client.model_name()

    with pytest.raises(QAError):
        run(go())


def test_connections_are_kept_alive_and_reused():
    with openai_stub(answer="a") as stub:

        async def go():
            async with QAClient(stub.url, model="m", max_concurrency_per_endpoint=4) as client:
                for _ in range(5):
                    await client.answer_many(TABLE, [f"q{i}" for i in range(8)])

        run(go())
        assert stub.stats()["calls"] == 40
        assert stub.stats()["connections"] <= 4 + 1  # the pool, and this stats call


def test_chunked_answers_are_read():
    body = b'{"choices": [{"message": {"content": "chunked ok"}}]}'
    chunked = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
    )

    async def go():
        async with raw_server(chunked) as (url, _), QAClient(url, model="m") as client:
            return await client.answer(TABLE, QUESTION)

    assert run(go()) == "chunked ok"


@pytest.mark.parametrize(
    "response",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"",  # closed without a byte
    ],
)
def test_malformed_or_dropped_responses_are_retried_protocol_errors(response):
    async def go():
        async with (
            raw_server(response) as (url, served),
            QAClient(url, model="m", max_retries=1, **FAST) as client,
        ):
            try:
                await client.answer(TABLE, QUESTION)
            except QAError as exc:
                return exc, served["requests"]
            raise AssertionError("a malformed answer was accepted")

    error, requests = run(go())
    assert requests == 2  # retried once
    assert error.kind == "connect" and "connection failed" in str(error)
    assert "2 attempts" in str(error)


def test_a_dropped_connection_is_retried():
    with openai_stub(failure="close", fail_first=1, answer="ok") as stub:

        async def go():
            async with QAClient(stub.url, model="m", **FAST) as client:
                return await client.answer(TABLE, QUESTION)

        assert run(go()) == "ok"
        assert stub.stats()["calls"] == 2


def test_a_failing_endpoint_is_ejected_then_probed_and_readmitted():
    with openai_stub(failure="503", retry_after_s=None) as bad, openai_stub(answer="ok") as good:
        clock = Clock()

        async def go():
            client = QAClient(
                [bad.url, good.url],
                model="m",
                table_affinity=False,  # least-loaded: the order of calls is deterministic
                eject_after_failures=2,
                eject_for_s=0.8,
                clock=clock,
                **FAST,
            )
            async with client:
                for i in range(10):  # one at a time, so the order is deterministic
                    assert await client.answer(TABLE, f"q{i}") == "ok"
                assert bad.stats()["calls"] == 2  # two failures, then ejected
                assert client.stats()[0].ejected
                clock.advance(0.85)
                await client.answer(TABLE, "probe 1")  # the probe fails: ejected again
                assert bad.stats()["calls"] == 3
                assert client.stats()[0].ejected
                for i in range(5):
                    await client.answer(TABLE, f"r{i}")
                assert bad.stats()["calls"] == 3
                bad.configure(failure="none", answer="ok")
                clock.advance(0.85)
                for i in range(6):
                    await client.answer(TABLE, f"s{i}")
                assert not client.stats()[0].ejected
                return bad.stats()["by_status"].get("200", 0)

        assert run(go()) >= 3  # readmitted and sharing the load again


def test_a_single_endpoint_that_blips_is_used_again_at_once():
    """Panic mode: with every endpoint ejected, calls go to them anyway, so a lone endpoint
    that fails a few times and recovers serves again at once, not after `eject_for_s`."""
    with openai_stub(failure="503", fail_first=3, retry_after_s=None, answer="ok") as stub:

        async def go():
            async with QAClient(
                stub.url, model="m", eject_after_failures=2, eject_for_s=30, max_retries=4, **FAST
            ) as client:
                during = await client.answer_many(TABLE, [f"q{i}" for i in range(6)])
                after = [await client.answer(TABLE, f"r{i}") for i in range(3)]
                return during, after, client.stats()[0]

        during, after, stats = run(go())  # eject_for_s=30 never passes in the test
        assert during == ["ok"] * 6 and after == ["ok"] * 3
        assert stub.stats()["by_status"] == {"503": 3, "200": 9}
        assert not stats.ejected and stats.consecutive_failures == 0


def test_a_lone_endpoint_that_stays_down_fails_with_its_own_error_after_the_retries():
    with openai_stub(failure="503", retry_after_s=None) as stub:

        async def go():
            async with QAClient(
                stub.url, model="m", eject_after_failures=1, max_retries=2, eject_for_s=60, **FAST
            ) as client:
                for i in range(2):
                    with pytest.raises(QAError) as caught:
                        await client.answer(TABLE, f"q{i}")
                return caught.value, client.stats()[0]

        error, stats = run(go())
        assert error.kind == "http" and error.status_code == 503 and "3 attempts" in str(error)
        assert stub.stats()["calls"] == 6  # every attempt reached it, ejected or not
        assert stats.ejected


def test_panic_mode_prefers_the_endpoint_ejected_longest_ago():
    with (
        openai_stub(answer="a") as first,
        openai_stub(failure="503", retry_after_s=None, answer="b") as second,
    ):

        async def go():
            async with QAClient(
                [first.url, second.url], model="m", eject_after_failures=1, eject_for_s=60,
                max_retries=0, table_affinity=False,
            ) as client:  # fmt: skip
                assert await client.answer(TABLE, "q1") == "a"  # ties rotate: first, then second
                with pytest.raises(QAError):
                    await client.answer(TABLE, "q2")  # second fails: ejected
                first.configure(failure="503", retry_after_s=None)
                with pytest.raises(QAError):
                    await client.answer(TABLE, "q3")  # first fails: ejected, after second
                assert [s.ejected for s in client.stats()] == [True, True]
                first.configure(failure="none")
                second.configure(failure="none")
                panicked = await client.answer(TABLE, "q4")
                readmitted = [s.ejected for s in client.stats()]
                later = [await client.answer(TABLE, f"r{i}") for i in range(3)]
                return panicked, readmitted, later

        panicked, readmitted, later = run(go())
        assert panicked == "b"  # ejected longest ago, so tried first
        assert readmitted == [True, False]
        assert later == ["b"] * 3  # in service again; the other stays out until its probe


def test_prime_prefix_sends_the_first_question_alone():
    with openai_stub(latency_s=0.05, answer="a") as stub:

        async def go():
            async with QAClient(stub.url, model="m", prime_prefix=True) as client:
                return await client.answer_many(TABLE, [f"q{i}" for i in range(5)])

        assert run(go()) == ["a"] * 5
        first, *rest = stub.records()
        assert all(r["received_s"] >= first["answered_s"] for r in rest)


def test_one_client_serves_several_event_loops_in_turn():
    with openai_stub(answer="ok") as stub, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = QAClient(stub.url, max_concurrency_per_endpoint=2)
        for _ in range(3):  # e.g. a worker running `asyncio.run` per job
            assert run(client.answer_many(TABLE, ["a", "b", "c"])) == ["ok"] * 3
        run(client.aclose())
        del client
        gc.collect()
        assert stub.stats()["models_calls"] == 1
    unclosed = [str(w.message) for w in caught if "Unclosed" in str(w.message)]
    assert not unclosed  # each loop's connection pool was closed, not left to the collector


def test_a_pool_left_on_a_loop_that_still_runs_is_closed_on_that_loop():
    with openai_stub(answer="ok") as stub, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = QAClient(stub.url, model="m")
        with asyncio.Runner() as first, asyncio.Runner() as second:
            assert first.run(client.answer(TABLE, "a")) == "ok"
            assert second.run(client.answer(TABLE, "b")) == "ok"  # first's pool is left behind
            first.run(asyncio.sleep(0.05))  # ... and closes when its loop runs again
            second.run(client.aclose())
        del client
        gc.collect()
    assert not [str(w.message) for w in caught if "Unclosed" in str(w.message)]


def test_a_cancelled_probe_does_not_leave_the_endpoint_out_for_good():
    with openai_stub(failure="503", retry_after_s=None) as stub:
        clock = Clock()

        async def go():
            async with QAClient(
                stub.url, model="m", eject_after_failures=1, eject_for_s=0.1, max_retries=0,
                clock=clock,
            ) as client:  # fmt: skip
                with pytest.raises(QAError):
                    await client.answer(TABLE, "q")  # ejected now
                stub.configure(failure="hang")
                clock.advance(0.15)
                probe = asyncio.create_task(client.answer(TABLE, "probe"))
                await until(lambda: stub.stats()["calls"] == 2)  # the probe hangs at the stub
                probe.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await probe
                stub.configure(failure="none", answer="ok")
                return await client.answer(TABLE, "again")

        assert run(go()) == "ok"


def test_metrics_are_exported_under_trivia_names():
    names = {metric.name for metric in REGISTRY.collect()}
    assert {"trivia_qa_calls", "trivia_qa_latency_seconds"} <= names


def test_a_reply_cut_at_max_tokens_is_a_failure_never_an_answer():
    """vLLM stops at max_tokens with finish_reason "length": `<answer>72 kg` must not be scored
    as `72 kg` (nor as anything): the question gets a QAError, retried like any failure."""
    with openai_stub(answer="<answer>72 kg</answer>") as stub:

        async def go():
            async with QAClient(stub.url, model="m", max_tokens=3, max_retries=1, **FAST) as client:
                return await client.answer_many(TABLE, [QUESTION])

        (outcome,) = run(go())
        assert isinstance(outcome, QAError) and outcome.kind == "truncated"
        assert "max_tokens" in str(outcome) and "2 attempts" in str(outcome)
        assert [r["finish_reason"] for r in stub.records()] == ["length", "length"]


def test_an_empty_reply_is_a_failure_and_a_later_whole_one_is_the_answer():
    with openai_stub(answer="") as stub:

        async def go():
            async with QAClient(stub.url, model="m", max_retries=0) as client:
                with pytest.raises(QAError) as caught:
                    await client.answer(TABLE, QUESTION)
                stub.configure(answer="<answer>68</answer>")
                return caught.value, await client.answer(TABLE, QUESTION)

        error, answer = run(go())
        assert error.kind == "truncated" and "no text" in str(error)
        assert answer == "<answer>68</answer>"


def test_from_settings_passes_every_qa_setting_to_its_argument():
    from pydantic import SecretStr

    from trivia.settings import Settings

    class Capture(QAClient):
        def __init__(self, endpoints, **options):
            self.call = (endpoints, options)

    settings = Settings(
        qa_urls=["http://a/v1", "http://b/v1"],
        qa_model="m",
        qa_api_key=SecretStr("k"),
        qa_max_concurrency_per_endpoint=3,
        qa_request_timeout_s=4.5,
        qa_max_retries=6,
        qa_backoff_base_s=0.7,
        qa_eject_after_failures=8,
        qa_eject_for_s=9.5,
        qa_max_tokens=10,
        qa_prime_prefix=True,
        qa_table_affinity=False,
        qa_resolve_s=11.0,
    )
    assert Capture.from_settings(settings).call == (
        ["http://a/v1", "http://b/v1"],
        {
            "model": "m",
            "api_key": "k",
            "max_concurrency_per_endpoint": 3,
            "request_timeout_s": 4.5,
            "max_retries": 6,
            "backoff_base_s": 0.7,
            "eject_after_failures": 8,
            "eject_for_s": 9.5,
            "max_tokens": 10,
            "prime_prefix": True,
            "table_affinity": False,
            "resolve_every_s": 11.0,
        },
    )
