"""A scriptable OpenAI-compatible chat server for tests and benchmarks.

It is a real HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length bodies) written on plain
asyncio streams rather than a web framework: the reward benchmark needs it to answer about 1,300
calls a second with 50 ms latency on two cores while the client runs beside it, and a framework's
per-request cost would be most of that budget.

What it speaks:
    GET  /health                    {"status": "ok"}
    GET  /v1/models                 one model, `StubConfig.model`
    POST /v1/chat/completions       `choices[0].message.content` is the answer, with `usage`
                                    and `finish_reason` as a real server sends them
    GET  /_stub/stats               counters (calls, answered, failed, in flight, …)
    GET  /_stub/records             one record per chat call (see `CallRecord`)
    POST /_stub/config              change any `StubConfig` field while running
    POST /_stub/reset               zero the counters and records

What it does, per `StubConfig`: waits `latency_s` per call while holding one of `slots`
concurrency slots (extra calls queue, as on a busy vLLM); fails calls on purpose (`failure`:
"503", "500", "429" with `Retry-After`, "400", "hang" never answers, "close" drops the
connection) for every
call or only the first `fail_first`; answers with `answer` or, when that is None, with the lookup
answerer reading the table and question out of the prompt. A `responder` (a function of the
decoded request and the call's number, in-thread stubs only) answers instead; it raises
`StubBadRequest` to send a 400 (the VLM stub is built on this).

Run it with `openai_stub(...)` (a context manager giving a `StubServer` with its `url`), in a
thread of this process or, for benchmarks, as its own process (`process=True`), or from a shell:
`python -m tests.support.openai_stub --config-json '{"latency_s": 0.05, "slots": 64}'`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from trivia.qa.prompts import parse_messages

_REPO_ROOT = Path(__file__).resolve().parents[2]  # where `python -m tests.support...` resolves

__all__ = [
    "CallRecord",
    "Responder",
    "StubBadRequest",
    "StubConfig",
    "StubServer",
    "openai_stub",
    "prefix_share",
    "serve_forever",
]

Failure = Literal["none", "400", "429", "500", "503", "hang", "close"]
# The reply content for a decoded chat request and the call's 1-based number.
Responder = Callable[[dict[str, Any], int], str]
_FAILURES = ("none", "400", "429", "500", "503", "hang", "close")


class StubBadRequest(ValueError):
    """Raised by a responder: the request is malformed; the stub answers 400 with the message."""


@dataclass
class StubConfig:
    """How the stub behaves; every field can be changed while it runs."""

    latency_s: float = 0.0
    slots: int = 0  # concurrent calls served at once; 0 = no limit
    failure: Failure = "none"
    fail_first: int | None = None  # fail only chat calls 1..N; None = every call
    retry_after_s: float | None = 1.0  # Retry-After sent with 429 and 503 (None: no header)
    answer: str | None = None  # fixed reply content; None = the lookup answerer's reply
    model: str = "trivia-stub"
    record_messages: bool = True  # keep each call's messages in its record

    def __post_init__(self) -> None:
        if self.failure not in _FAILURES:
            raise ValueError(f"failure must be one of {_FAILURES}, not {self.failure!r}")
        if self.slots < 0 or self.latency_s < 0:
            raise ValueError("slots and latency_s must not be negative")


@dataclass
class CallRecord:
    """One chat call as the stub saw it."""

    n: int  # 1-based order of arrival
    status: int | str  # HTTP status sent, or "hang" / "close"
    model: str | None
    temperature: float | None
    max_tokens: int | None
    chat_template_kwargs: dict[str, Any] | None
    authorization: str | None  # the Authorization header as received
    prompt_chars: int  # length of the prompt as role + content of each message
    table_key: str | None  # hash of the table found in the prompt (None: not our prompt)
    shared_prefix_chars: int  # common prefix with the first prompt seen for this table
    received_s: float  # time.monotonic() of the stub's process
    answered_s: float | None
    messages: list[dict[str, Any]] | None = None


def prefix_share(records: Sequence[Mapping[str, Any] | CallRecord]) -> float:
    """Mean share of each prompt that is a prefix common to all prompts of its table.

    This is the part of a prompt a prefix cache can serve once per table. Records without a
    table (prompts not built by `build_messages`) are left out; 0.0 when none remain.
    """
    rows = [r if isinstance(r, Mapping) else dataclasses.asdict(r) for r in records]
    common: dict[str, int] = {}
    for row in rows:
        key = row["table_key"]
        if key is not None:
            shared = row["shared_prefix_chars"]
            common[key] = min(common.get(key, shared), shared)
    shares = [
        common[row["table_key"]] / row["prompt_chars"]
        for row in rows
        if row["table_key"] is not None and row["prompt_chars"] > 0
    ]
    return sum(shares) / len(shares) if shares else 0.0


def _common_prefix_len(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on slice comparisons (C speed)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


def _json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> bytes:
    """The bytes of an HTTP/1.1 response with a JSON body."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        "content-type: application/json",
        f"content-length: {len(body)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> bytes:
    return _json_response(
        status, {"error": {"message": message, "type": "stub_error", "code": status}}, headers
    )


class _StubState:
    """Configuration, counters and records shared by the connections of one stub."""

    def __init__(self, config: StubConfig, responder: Responder | None = None) -> None:
        self.config = config
        self.responder = responder
        self.created = int(time.time())
        self.reset()
        self._slots: asyncio.Semaphore | None = None
        self._slot_count = -1

    def reset(self) -> None:
        self.calls = 0
        self.answered = 0
        self.failed = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.models_calls = 0
        self.connections = 0
        self.by_status: Counter[str] = Counter()
        self.records: list[CallRecord] = []
        self.first_prompt: dict[str, str] = {}

    def slots(self) -> asyncio.Semaphore | None:
        if self.config.slots != self._slot_count:
            self._slot_count = self.config.slots
            self._slots = asyncio.Semaphore(self.config.slots) if self.config.slots else None
        return self._slots

    def stats(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "answered": self.answered,
            "failed": self.failed,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "models_calls": self.models_calls,
            "connections": self.connections,
            "by_status": dict(self.by_status),
            "config": dataclasses.asdict(self.config),
        }

    def configure(self, changes: Mapping[str, Any]) -> None:
        fields = {f.name for f in dataclasses.fields(StubConfig)}
        unknown = set(changes) - fields
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        self.config = StubConfig(**{**dataclasses.asdict(self.config), **changes})


def _reply_content(state: _StubState, request: dict[str, Any], n: int) -> str:
    config = state.config
    if state.responder is not None:
        return state.responder(request, n)
    messages = request["messages"]
    if config.answer is not None:
        return config.answer
    from trivia.qa.lookup import answer_messages  # the table parser is loaded only when needed

    return answer_messages(messages)


async def _chat(state: _StubState, body: bytes, headers: Mapping[str, str]) -> bytes | None:
    """Handle one chat call; None means the connection is to be dropped without a reply."""
    state.calls += 1
    n = state.calls
    config = state.config
    received = time.monotonic()
    try:
        request = json.loads(body)
        messages = request["messages"]
        if not isinstance(messages, list):
            raise TypeError("messages must be a list")
    except (ValueError, KeyError, TypeError) as exc:
        state.failed += 1
        state.by_status["400"] += 1
        return _error(400, f"bad request: {exc}")

    prompt = "".join(f"{m.get('role', '')}\n{m.get('content', '')}\n" for m in messages)
    try:
        table, _question = parse_messages(messages)
        table_key: str | None = hashlib.blake2b(table.encode(), digest_size=12).hexdigest()
    except (ValueError, AttributeError):
        table_key = None
    shared = len(prompt)
    if table_key is not None:
        first = state.first_prompt.setdefault(table_key, prompt)
        shared = _common_prefix_len(first, prompt)
    record = CallRecord(
        n=n,
        status=200,
        model=request.get("model"),
        temperature=request.get("temperature"),
        max_tokens=request.get("max_tokens"),
        chat_template_kwargs=request.get("chat_template_kwargs"),
        authorization=headers.get("authorization"),
        prompt_chars=len(prompt),
        table_key=table_key,
        shared_prefix_chars=shared,
        received_s=received,
        answered_s=None,
        messages=messages if config.record_messages else None,
    )
    state.records.append(record)

    failing = config.failure != "none" and (config.fail_first is None or n <= config.fail_first)
    if failing:
        state.failed += 1
        record.status = (
            config.failure if config.failure in ("hang", "close") else int(config.failure)
        )
        state.by_status[str(record.status)] += 1
        if config.failure == "hang":
            await asyncio.Future()  # until the stub stops
        if config.failure == "close":
            return None
        status = int(config.failure)
        extra = {}
        if config.retry_after_s is not None and status in (429, 503):
            extra["retry-after"] = f"{config.retry_after_s:g}"
        return _error(status, f"stub failure {status} on call {n}", extra)

    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    try:
        slots = state.slots()
        if slots is None:
            if config.latency_s:
                await asyncio.sleep(config.latency_s)
        else:
            async with slots:
                if config.latency_s:
                    await asyncio.sleep(config.latency_s)
        try:
            content = _reply_content(state, request, n)
        except StubBadRequest as exc:
            state.failed += 1
            state.by_status["400"] += 1
            record.status = 400
            return _error(400, f"bad request: {exc}")
        except Exception as exc:  # a responder's bug: say so rather than drop the connection
            state.failed += 1
            state.by_status["500"] += 1
            record.status = 500
            return _error(500, f"responder failed: {type(exc).__name__}: {exc}")
    finally:
        state.in_flight -= 1
    state.answered += 1
    state.by_status["200"] += 1
    record.answered_s = time.monotonic()
    prompt_tokens = len(prompt) // 4
    completion_tokens = max(1, len(content) // 4)
    return _json_response(
        200,
        {
            "id": f"chatcmpl-stub-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or config.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
    )


async def _route(
    state: _StubState, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> bytes | None:
    path = path.split("?", 1)[0]
    if path == "/v1/chat/completions":
        if method != "POST":
            return _error(405, "use POST")
        return await _chat(state, body, headers)
    if method == "GET":
        if path == "/v1/models":
            state.models_calls += 1
            model = {
                "id": state.config.model,
                "object": "model",
                "created": state.created,
                "owned_by": "trivia-stub",
            }
            return _json_response(200, {"object": "list", "data": [model]})
        if path == "/health":
            return _json_response(200, {"status": "ok"})
        if path == "/_stub/stats":
            return _json_response(200, state.stats())
        if path == "/_stub/records":
            return _json_response(200, [dataclasses.asdict(r) for r in state.records])
    if method == "POST" and path == "/_stub/config":
        try:
            state.configure(json.loads(body or b"{}"))
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc))
        return _json_response(200, dataclasses.asdict(state.config))
    if method == "POST" and path == "/_stub/reset":
        state.reset()
        return _json_response(200, {"reset": True})
    return _error(404, f"no route {method} {path}")


async def _serve_connection(
    state: _StubState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    state.connections += 1
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            parts = request_line.split(" ")
            if len(parts) != 3:
                writer.write(_error(400, "bad request line"))
                return
            method, path, version = parts
            headers = {}
            for line in header_lines:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                writer.write(_error(411, "send a content-length"))
                return
            try:
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
            except (ValueError, asyncio.IncompleteReadError, ConnectionError):
                return
            response = await _route(state, method, path, headers, body)
            if response is None:
                return
            writer.write(response)
            if version == "HTTP/1.0" or headers.get("connection", "").lower() == "close":
                return
    finally:
        writer.close()


class _Runner:
    """The stub's event loop in a daemon thread of this process."""

    def __init__(
        self, config: StubConfig, host: str, port: int, responder: Responder | None = None
    ) -> None:
        self._state = _StubState(config, responder)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(
            target=self._run, args=(host, port), name="openai-stub", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("stub did not start listening within 10 s")
        if self._error is not None:
            raise RuntimeError(f"stub failed to start: {self._error}") from self._error

    def _run(self, host: str, port: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(_serve(self._state, host, port, self._on_listening))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    def _on_listening(self, port: int, stopped: asyncio.Event) -> None:
        self.port = port
        self._stopped = stopped
        self._ready.set()

    def stop(self) -> None:
        if self._stopped is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)


async def _serve(
    state: _StubState, host: str, port: int, on_listening: Callable[[int, asyncio.Event], None]
) -> None:
    """Serve until the event handed to `on_listening` (with the bound port) is set."""
    stopped = asyncio.Event()
    connections: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await _serve_connection(state, reader, writer)
        except asyncio.CancelledError:
            writer.close()
        finally:
            connections.discard(task)

    server = await asyncio.start_server(handle, host, port, backlog=1024)
    on_listening(server.sockets[0].getsockname()[1], stopped)
    async with server:
        await stopped.wait()
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)


class StubServer:
    """A running stub: its `url`, and its admin calls over HTTP (thread or process alike)."""

    def __init__(self, url: str, stop: Callable[[], None] | None) -> None:
        self.url = url
        self._stop = stop
        self._admin = httpx.Client(base_url=url, timeout=30.0)

    def stats(self) -> dict[str, Any]:
        """Counters: calls, answered, failed, in_flight, max_in_flight, by_status, config."""
        return self._admin.get("/_stub/stats").raise_for_status().json()

    def records(self) -> list[dict[str, Any]]:
        """One dict per chat call, in arrival order (the fields of `CallRecord`)."""
        return self._admin.get("/_stub/records").raise_for_status().json()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change `StubConfig` fields of the running stub; returns the whole new config."""
        return self._admin.post("/_stub/config", json=changes).raise_for_status().json()

    def reset(self) -> None:
        """Zero the counters and forget the records."""
        self._admin.post("/_stub/reset").raise_for_status()

    def stop(self) -> None:
        """Stop serving (the port then refuses connections); safe to call twice."""
        self._admin.close()
        if self._stop is not None:
            self._stop()
            self._stop = None


@contextlib.contextmanager
def openai_stub(
    config: StubConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    process: bool = False,
    responder: Responder | None = None,
    **fields: Any,
) -> Iterator[StubServer]:
    """Run a stub for the `with` block: `with openai_stub(latency_s=0.05) as stub: stub.url`.

    `fields` override `config`. `process=True` runs it as its own Python process, which keeps
    its work off this interpreter's GIL (use it for benchmarks); port 0 picks a free port.
    `responder` answers every call in place of `answer` and the lookup answerer (in-thread only).
    """
    config = StubConfig(**{**dataclasses.asdict(config or StubConfig()), **fields})
    if responder is not None and process:
        raise ValueError("a responder runs in this process: use process=False")
    if not process:
        runner = _Runner(config, host, port, responder)
        server = StubServer(f"http://{host}:{runner.port}", runner.stop)
    else:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.openai_stub",
                "--host",
                host,
                "--port",
                str(port),
                "--config-json",
                json.dumps(dataclasses.asdict(config)),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=_REPO_ROOT,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            proc.kill()
            proc.wait()
            raise RuntimeError(f"stub process failed to start: {line!r}")

        def stop() -> None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()

        server = StubServer(line.removeprefix("listening on ").strip(), stop)
    try:
        yield server
    finally:
        server.stop()


def serve_forever(config: StubConfig, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve a stub in the foreground until interrupted; prints `listening on URL` when ready."""

    def on_listening(bound: int, _stopped: asyncio.Event) -> None:
        print(f"listening on http://{host}:{bound}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_StubState(config), host, port, on_listening))


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m tests.support.openai_stub --config-json '{...}'` (how `process=True` runs it)."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.openai_stub")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config-json", default="{}", help="StubConfig fields as JSON")
    args = parser.parse_args(argv)
    serve_forever(StubConfig(**json.loads(args.config_json)), args.host, args.port)


if __name__ == "__main__":
    main()
