"""A scriptable OpenAI-compatible chat server that behaves like vLLM, for tests and benchmarks.

It is a real HTTP server (`aiohttp.web`) on 127.0.0.1. Where its behaviour can differ from the
real server, it follows vLLM:

- Sampling fields a request leaves unset come from the model's `generation_config`
  (`StubConfig.generation_config`, greedy by default: `top_k=1`, as Qwen2.5-VL's is), and an
  unset `max_tokens` is what is left of `max_model_len` after the prompt. The effective values
  are in each call's record (`sampling`); the requested ones stay in `temperature`/`max_tokens`.
- A reply longer than `max_tokens` is cut there and sent with `finish_reason: "length"` (the
  stub counts one token per `CHARS_PER_TOKEN` characters); a prompt that leaves no room is a 400.
- `slots` calls are served at once; up to `max_waiting` more wait for a slot, and beyond that the
  server is overloaded and answers 503 with `Retry-After`.
- A prefix cache, simulated: a call about a table this server has not served among its last
  `prefix_cache_tables` tables pays `prefix_miss_latency_s` more (the table's prefill) than one
  it has (a hit). Each record says which (`prefix_hit`); the stats count both.

What it speaks:
    GET  /health                    {"status": "ok"}
    GET  /v1/models                 one model, `StubConfig.model`, with its `max_model_len`
    POST /v1/chat/completions       `choices[0].message.content`, `finish_reason`, `usage`
    GET  /_stub/stats               counters (calls, answered, failed, in flight, …)
    GET  /_stub/records             one record per chat call (see `CallRecord`)
    POST /_stub/config              change any `StubConfig` field while running
    POST /_stub/reset               zero the counters and records

Failures on purpose (`failure`, for every call or only the first `fail_first`): "503", "500",
"429" (with `Retry-After`), "400", "hang" (never answers), "close" (drops the connection). The
reply is `answer` or, when that is None, the lookup answerer's (`trivia.qa.lookup`) reading the
table and question out of the prompt. A `responder` (a function of the request, sampling fields
filled in, and the call's number; in-thread stubs only) answers instead; it raises
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
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from aiohttp import web

from trivia.qa.prompts import parse_messages

_REPO_ROOT = Path(__file__).resolve().parents[2]  # where `python -m tests.support...` resolves

Failure = Literal["none", "400", "429", "500", "503", "hang", "close"]
# The reply content for a chat request (sampling fields filled in) and the call's 1-based number.
Responder = Callable[[dict[str, Any], int], str]
_FAILURES = ("none", "400", "429", "500", "503", "hang", "close")
CHARS_PER_TOKEN = 4
# A greedy generation_config, as Qwen2.5-VL ships (vLLM applies it to unset request fields).
GREEDY = {"temperature": 1e-6, "top_p": 0.001, "top_k": 1, "repetition_penalty": 1.05}
_SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "repetition_penalty")


class StubBadRequest(ValueError):
    """Raised by a responder: the request is malformed; the stub answers 400 with the message."""


@dataclass
class StubConfig:
    """How the stub behaves; every field can be changed while it runs."""

    latency_s: float = 0.0
    slots: int = 0  # concurrent calls served at once; 0 = no limit
    max_waiting: int = 256  # calls waiting for a slot before the stub answers 503
    failure: Failure = "none"
    fail_first: int | None = None  # fail only chat calls 1..N; None = every call
    retry_after_s: float | None = 1.0  # Retry-After sent with 429 and 503 (None: no header)
    answer: str | None = None  # fixed reply content; None = the lookup answerer's reply
    model: str = "trivia-stub"
    max_model_len: int = 32768
    generation_config: dict[str, float] = field(default_factory=lambda: dict(GREEDY))
    record_messages: bool = True  # keep each call's messages in its record
    prefix_miss_latency_s: float = 0.0  # extra time of a call whose table is not cached
    prefix_cache_tables: int = 1024  # tables the simulated prefix cache holds (LRU)

    def __post_init__(self) -> None:
        if self.failure not in _FAILURES:
            raise ValueError(f"failure must be one of {_FAILURES}, not {self.failure!r}")
        if self.slots < 0 or self.latency_s < 0 or self.max_waiting < 0:
            raise ValueError("slots, max_waiting and latency_s must not be negative")


@dataclass
class CallRecord:
    """One chat call as the stub saw it."""

    n: int  # 1-based order of arrival
    status: int | str  # HTTP status sent, or "hang" / "close"
    model: str | None
    temperature: float | None  # as requested (None: unset)
    max_tokens: int | None  # as requested (None: unset)
    sampling: dict[str, float]  # what the call was served with, model defaults filled in
    finish_reason: str | None
    chat_template_kwargs: dict[str, Any] | None
    authorization: str | None  # the Authorization header as received
    prompt_chars: int  # length of the prompt as role + content of each message
    table_key: str | None  # hash of the table found in the prompt (None: not our prompt)
    shared_prefix_chars: int  # common prefix with the first prompt seen for this table
    received_s: float  # time.monotonic() of the stub's process
    answered_s: float | None
    messages: list[dict[str, Any]] | None = None
    prefix_hit: bool | None = None  # its table was in the simulated prefix cache (None: no table)


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


def tokens(text: str) -> int:
    """How many tokens the stub counts in `text`."""
    return -(-len(text) // CHARS_PER_TOKEN)


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


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "stub_error", "code": status}}
    return web.json_response(body, status=status, headers=headers)


class _StubState:
    """Configuration, counters and records shared by the requests of one stub."""

    def __init__(self, config: StubConfig, responder: Responder | None = None) -> None:
        self.config = config
        self.responder = responder
        self.created = int(time.time())
        self.reset()
        self._slots: asyncio.Semaphore | None = None
        self._slot_count = -1
        self._transports: weakref.WeakSet[Any] = weakref.WeakSet()

    def reset(self) -> None:
        self.calls = 0
        self.answered = 0
        self.failed = 0
        self.in_flight = 0
        self.waiting = 0
        self.serving = 0
        self.max_in_flight = 0
        self.max_serving = 0
        self.models_calls = 0
        self.connections = 0
        self.by_status: Counter[str] = Counter()
        self.records: list[CallRecord] = []
        self.first_prompt: dict[str, str] = {}
        self.prefix_cache: OrderedDict[str, None] = OrderedDict()
        self.prefix_hits = 0
        self.prefix_misses = 0

    def prefix_lookup(self, table_key: str) -> bool:
        """Whether the table is cached; caches it (least recently used out) either way."""
        hit = table_key in self.prefix_cache
        self.prefix_cache[table_key] = None
        self.prefix_cache.move_to_end(table_key)
        while len(self.prefix_cache) > max(self.config.prefix_cache_tables, 0):
            self.prefix_cache.popitem(last=False)
        self.prefix_hits += hit
        self.prefix_misses += not hit
        return hit

    def slots(self) -> asyncio.Semaphore | None:
        if self.config.slots != self._slot_count:
            self._slot_count = self.config.slots
            self._slots = asyncio.Semaphore(self.config.slots) if self.config.slots else None
        return self._slots

    def saw_connection(self, transport: Any) -> None:
        if transport is not None and transport not in self._transports:
            self._transports.add(transport)
            self.connections += 1

    def stats(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "answered": self.answered,
            "failed": self.failed,
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "serving": self.serving,
            "max_in_flight": self.max_in_flight,
            "max_serving": self.max_serving,
            "models_calls": self.models_calls,
            "connections": self.connections,
            "prefix_hits": self.prefix_hits,
            "prefix_misses": self.prefix_misses,
            "by_status": dict(self.by_status),
            "config": dataclasses.asdict(self.config),
        }

    def configure(self, changes: Mapping[str, Any]) -> None:
        fields = {f.name for f in dataclasses.fields(StubConfig)}
        unknown = set(changes) - fields
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        self.config = StubConfig(**{**dataclasses.asdict(self.config), **changes})

    def fail(self, record: CallRecord, status: int | str) -> None:
        self.failed += 1
        self.by_status[str(status)] += 1
        record.status = status


def _reply_content(state: _StubState, request: dict[str, Any], n: int) -> str:
    if state.responder is not None:
        return state.responder(request, n)
    if state.config.answer is not None:
        return state.config.answer
    from trivia.qa.lookup import answer_messages  # the table parser is loaded only when needed

    return answer_messages(request["messages"])


def table_key(messages: list[dict[str, Any]]) -> str | None:
    """The stub's key of the table a prompt asks about (None: not a question prompt)."""
    try:
        table, _question = parse_messages(messages)
    except (ValueError, AttributeError, TypeError):
        return None
    return hashlib.blake2b(table.encode(), digest_size=12).hexdigest()


def _prompt_text(messages: list[Any]) -> str:
    parts = []
    for m in messages:
        content = m.get("content", "") if isinstance(m, dict) else ""
        if not isinstance(content, str):  # list of parts: count the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(f"{m.get('role', '') if isinstance(m, dict) else ''}\n{content}\n")
    return "".join(parts)


class _Handlers:
    """The stub's routes over one `_StubState`."""

    def __init__(self, state: _StubState) -> None:
        self.state = state

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/_stub/stats", self.stats)
        app.router.add_get("/_stub/records", self.records)
        app.router.add_post("/_stub/config", self.configure)
        app.router.add_post("/_stub/reset", self.reset)
        return app

    async def models(self, request: web.Request) -> web.Response:
        self.state.saw_connection(request.transport)
        self.state.models_calls += 1
        config = self.state.config
        model = {
            "id": config.model,
            "object": "model",
            "created": self.state.created,
            "owned_by": "trivia-stub",
            "max_model_len": config.max_model_len,
        }
        return web.json_response({"object": "list", "data": [model]})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def stats(self, request: web.Request) -> web.Response:
        self.state.saw_connection(request.transport)
        return web.json_response(self.state.stats())

    async def records(self, request: web.Request) -> web.Response:
        return web.json_response([dataclasses.asdict(r) for r in self.state.records])

    async def configure(self, request: web.Request) -> web.Response:
        try:
            self.state.configure(json.loads(await request.read() or b"{}"))
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc))
        return web.json_response(dataclasses.asdict(self.state.config))

    async def reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return web.json_response({"reset": True})

    async def chat(self, http: web.Request) -> web.StreamResponse:
        state = self.state
        state.saw_connection(http.transport)
        state.calls += 1
        n = state.calls
        config = state.config
        received = time.monotonic()
        try:
            request = json.loads(await http.read())
            messages = request["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            state.failed += 1
            state.by_status["400"] += 1
            return _error(400, f"bad request: {exc}")

        prompt = _prompt_text(messages)
        prompt_table = table_key(messages)
        shared = len(prompt)
        if prompt_table is not None:
            first = state.first_prompt.setdefault(prompt_table, prompt)
            shared = _common_prefix_len(first, prompt)
        prompt_tokens = tokens(prompt)
        room = config.max_model_len - prompt_tokens
        sampling = {
            **config.generation_config,
            **{k: request[k] for k in _SAMPLING_FIELDS if request.get(k) is not None},
            "max_tokens": request.get("max_tokens") or room,
        }
        record = CallRecord(
            n=n,
            status=200,
            model=request.get("model"),
            temperature=request.get("temperature"),
            max_tokens=request.get("max_tokens"),
            sampling=sampling,
            finish_reason=None,
            chat_template_kwargs=request.get("chat_template_kwargs"),
            authorization=http.headers.get("authorization"),
            prompt_chars=len(prompt),
            table_key=prompt_table,
            shared_prefix_chars=shared,
            received_s=received,
            answered_s=None,
            messages=messages if config.record_messages else None,
        )
        state.records.append(record)

        if sampling["max_tokens"] > room or room <= 0:
            state.fail(record, 400)
            return _error(
                400,
                f"This model's maximum context length is {config.max_model_len} tokens. "
                f"However, you requested {sampling['max_tokens'] + prompt_tokens} tokens "
                f"({prompt_tokens} in the messages, {sampling['max_tokens']} in the completion).",
            )
        failing = config.failure != "none" and (config.fail_first is None or n <= config.fail_first)
        if failing:
            return await self._failure(http, record, n)

        slots = state.slots()
        if slots is not None and slots.locked() and state.waiting >= config.max_waiting:
            state.fail(record, 503)
            return _error(503, "server overloaded: no slot free", self._retry_after(503))
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if slots is not None:
                state.waiting += 1
                try:
                    await slots.acquire()
                finally:
                    state.waiting -= 1
            state.serving += 1
            state.max_serving = max(state.max_serving, state.serving)
            try:
                latency = config.latency_s
                if prompt_table is not None:
                    record.prefix_hit = state.prefix_lookup(prompt_table)
                    latency += 0.0 if record.prefix_hit else config.prefix_miss_latency_s
                if latency:
                    await asyncio.sleep(latency)
            finally:
                state.serving -= 1
                if slots is not None:
                    slots.release()
            try:
                content = _reply_content(state, {**request, **sampling}, n)
            except StubBadRequest as exc:
                state.fail(record, 400)
                return _error(400, f"bad request: {exc}")
            except Exception as exc:  # a responder's bug: say so rather than drop the connection
                state.fail(record, 500)
                return _error(500, f"responder failed: {type(exc).__name__}: {exc}")
        finally:
            state.in_flight -= 1

        finish_reason = "stop"
        limit = int(sampling["max_tokens"]) * CHARS_PER_TOKEN
        if len(content) > limit:
            content, finish_reason = content[:limit], "length"
        state.answered += 1
        state.by_status["200"] += 1
        record.answered_s = time.monotonic()
        record.finish_reason = finish_reason
        completion_tokens = tokens(content)
        return web.json_response(
            {
                "id": f"chatcmpl-stub-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model") or config.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    def _retry_after(self, status: int) -> dict[str, str]:
        after = self.state.config.retry_after_s
        if after is None or status not in (429, 503):
            return {}
        return {"retry-after": f"{after:g}"}

    async def _failure(self, http: web.Request, record: CallRecord, n: int) -> web.StreamResponse:
        failure = self.state.config.failure
        if failure == "hang":
            self.state.fail(record, "hang")
            await asyncio.Future()  # until the stub stops
        if failure == "close":
            self.state.fail(record, "close")
            if http.transport is not None:
                http.transport.abort()
            raise asyncio.CancelledError  # nothing is written to the dropped connection
        status = int(failure)
        self.state.fail(record, status)
        return _error(status, f"stub failure {status} on call {n}", self._retry_after(status))


async def _serve(
    app: web.Application, host: str, port: int, on_listening: Callable[[int, asyncio.Event], None]
) -> None:
    """Serve until the event handed to `on_listening` (with the bound port) is set."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        server = site._server  # the bound port when asked for port 0
        assert server is not None and server.sockets
        stopped = asyncio.Event()
        on_listening(server.sockets[0].getsockname()[1], stopped)
        await stopped.wait()
    finally:
        await runner.cleanup()


class AppThread:
    """An aiohttp app served by an event loop in a daemon thread of this process (both stubs)."""

    def __init__(self, app: web.Application, host: str, port: int, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0
        self._thread = threading.Thread(
            target=self._run, args=(app, host, port), name=name, daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{name} did not start listening within 10 s")
        if self._error is not None:
            raise RuntimeError(f"{name} failed to start: {self._error}") from self._error

    def _run(self, app: web.Application, host: str, port: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(_serve(app, host, port, self._on_listening))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            pending = asyncio.all_tasks(self._loop)  # hung calls ("hang") end with the stub
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
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


class StubServer:
    """A running stub: its `url`, and its admin calls over HTTP (thread or process alike)."""

    def __init__(self, url: str, stop: Callable[[], None] | None) -> None:
        self.url = url
        self._stop = stop
        self._admin = httpx.Client(base_url=url, timeout=30.0)

    def stats(self) -> dict[str, Any]:
        """Counters: calls, answered, failed, in_flight, waiting, max_in_flight, by_status, …"""
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


def _start_process(config: StubConfig, host: str, port: int) -> StubServer:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_stub", "--host", host, "--port", str(port),
         "--config-json", json.dumps(dataclasses.asdict(config))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=_REPO_ROOT,
    )  # fmt: skip
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

    return StubServer(line.removeprefix("listening on ").strip(), stop)


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
    if process:
        server = _start_process(config, host, port)
    else:
        runner = AppThread(
            _Handlers(_StubState(config, responder)).app(), host, port, "openai-stub"
        )
        server = StubServer(f"http://{host}:{runner.port}", runner.stop)
    try:
        yield server
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m tests.support.openai_stub --config-json '{...}'`: serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.openai_stub")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config-json", default="{}", help="StubConfig fields as JSON")
    args = parser.parse_args(argv)
    config = StubConfig(**json.loads(args.config_json))

    def on_listening(bound: int, _stopped: asyncio.Event) -> None:
        print(f"listening on http://{args.host}:{bound}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_Handlers(_StubState(config)).app(), args.host, args.port, on_listening))


if __name__ == "__main__":
    main()
