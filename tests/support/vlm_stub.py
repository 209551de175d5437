"""A VLM server for tests, benchmarks and the quick start that behaves like vLLM's OpenAI server.

Real HTTP (aiohttp.web on 127.0.0.1) in a thread of its own, speaking what the data engine uses:

    GET  /health, /v1/models        the model with vLLM's card fields (`root`, `max_model_len`)
    POST /v1/chat/completions       images as base64 data URLs (anything else: 400)

Where a real server's behaviour decides whether the data engine is right, the stub copies it:
- Unset sampling fields come from the model's generation config, as vLLM's "default chat
  sampling params from model" does. The default is Qwen2.5-VL's: `top_k` 1, `top_p` 0.001,
  `repetition_penalty` 1.05, `temperature` 0.1, so a client that sends only `temperature`
  gets greedy, identical answers. Out-of-range fields get vLLM's 400.
- An answer longer than `max_tokens` is cut there with `finish_reason` "length".
- More calls than `slots` + `max_waiting` at once get 503 (an overloaded server); `failure`
  makes calls fail on purpose ("500", "503", "429" with Retry-After) for all or the first
  `fail_first`; "down" makes every route answer 503 (a dead server behind a proxy).

The default responder (`table_responder`) plays a table-recognition model: to a recognition
prompt about one known image it answers that image's table (OTSL or HTML, as asked). When the
call samples (temperature > 0 and `top_k` ≠ 1), it is unsure in a way that repeats: a call is
perturbed with probability `min(1, temperature × difficulty)` (the image's difficulty in
[0, 1) comes from its key), drawing the perturbation (drop a row, change a cell, cut the output
short) from a generator seeded with the request's `seed`, else the image and the call's number.

Images are recognised as a server would see them, resized: the stub is given the source files
(`images=`) and matches each image it receives to the nearest of them by a 32×32 thumbnail;
`StubRequest.image_keys` are those files' SHA-256 (`trivia.engine.images.image_key`), or the
received bytes' own SHA-256 when nothing is near.

From a shell (the quick start in docs/data-engine.md):
    python -m tests.support.vlm_stub --examples examples/pubtabnet --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web
from tests.support.openai_stub import AppThread, StubBadRequest

from trivia.engine.images import decode_data_url, image_key
from trivia.engine.prompts import recognition_format
from trivia.tables import Table, html_to_table, is_complete, table_to_html, table_to_otsl

__all__ = [
    "QWEN25_VL_GENERATION_CONFIG",
    "StubBadRequest",
    "StubRequest",
    "VLMStub",
    "perturb",
    "table_responder",
    "vlm_stub",
]

#: Qwen2.5-VL-Instruct's generation_config.json sampling fields: greedy in effect.
QWEN25_VL_GENERATION_CONFIG: dict[str, float | int] = {
    "temperature": 0.1,
    "top_p": 0.001,
    "top_k": 1,
    "repetition_penalty": 1.05,
}
#: vLLM's own values for fields the generation config does not set.
_VLLM_DEFAULTS: dict[str, float | int | None] = {
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": -1,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "seed": None,
}
_TOKEN = re.compile(r"<[^<>\s]{1,12}>|\w+|\s+|[^\w\s]")
_THUMB = 32
_NEAR = 24.0  # mean absolute difference (0–255) under which a thumbnail names a known image


@dataclass
class StubRequest:
    """One chat call as the stub decoded it, sampling fields as the server would use them."""

    messages: list[dict[str, Any]]
    images: list[bytes]  # decoded from the data URLs, in order
    image_keys: list[str]  # the known source image's SHA-256 for each image
    prompt: str  # text parts joined: "" within a message, "\n" between messages
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repetition_penalty: float
    seed: int | None
    max_tokens: int
    model: str
    n_call: int  # 1-based number of this call among calls about the same images
    body: dict[str, Any] = field(default_factory=dict, repr=False)  # the request as sent

    @property
    def samples(self) -> bool:
        """Whether this call samples (else it decodes greedily, as top_k 1 or temperature 0)."""
        return self.temperature > 0 and self.top_k != 1 and self.top_p > 0.01


Responder = Callable[[StubRequest], str]


def count_tokens(text: str) -> int:
    """The stub's token count: tags, words, runs of space and single marks."""
    return len(_TOKEN.findall(text))


def _cut(text: str, max_tokens: int) -> tuple[str, str]:
    tokens = _TOKEN.findall(text)
    if len(tokens) <= max_tokens:
        return text, "stop"
    return "".join(tokens[:max_tokens]), "length"


def _thumbnail(data: bytes) -> bytes | None:
    """A 32×32 grey thumbnail: what survives the client's resizing (the aspect may not)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as opened:
            return opened.convert("L").resize((_THUMB, _THUMB), Image.Resampling.BOX).tobytes()
    except Exception:  # Pillow raises many types for bad data
        return None


class _Gallery:
    """The known source images, found again by thumbnail after the client resized them."""

    def __init__(self, images: Iterable[Path | bytes]) -> None:
        self._known: list[tuple[bytes, str]] = []
        for image in images:
            data = image if isinstance(image, bytes) else Path(image).read_bytes()
            thumb = _thumbnail(data)
            if thumb is not None:
                self._known.append((thumb, image_key(data)))

    def key(self, data: bytes) -> str:
        own = hashlib.sha256(data).hexdigest()
        thumb = _thumbnail(data)
        if thumb is None or not self._known:
            return own
        pixels = thumb
        best, best_key = _NEAR, own
        for known, key in self._known:
            distance = sum(abs(a - b) for a, b in zip(pixels, known, strict=True)) / len(pixels)
            if distance < best:
                best, best_key = distance, key
        return best_key


def _decode_image(url: object) -> bytes:
    if not isinstance(url, str):
        raise StubBadRequest("image_url.url must be a string")
    try:
        data = decode_data_url(url)
    except ValueError as exc:
        raise StubBadRequest(str(exc)) from None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception as exc:  # Pillow raises many types for bad data
        raise StubBadRequest(f"data URL is not an image: {exc}") from None
    return data


def _sampling(body: Mapping[str, Any], generation_config: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling fields as vLLM uses them: the request's, else the model's, else vLLM's."""
    used = {
        name: body[name] if body.get(name) is not None else generation_config.get(name, default)
        for name, default in _VLLM_DEFAULTS.items()
    }
    try:
        temperature, top_p = float(used["temperature"]), float(used["top_p"])
        top_k, min_p = int(used["top_k"]), float(used["min_p"])
        penalty = float(used["repetition_penalty"])
        seed = None if used["seed"] is None else int(used["seed"])
    except (TypeError, ValueError) as exc:
        raise StubBadRequest(f"bad sampling field: {exc}") from None
    if temperature < 0:
        raise StubBadRequest(f"temperature must be non-negative, got {temperature}.")
    if not 0 < top_p <= 1:
        raise StubBadRequest(f"top_p must be in (0, 1], got {top_p}.")
    if top_k < -1:
        raise StubBadRequest(f"top_k must be -1 (disable), or at least 1, got {top_k}.")
    if not 0 <= min_p <= 1:
        raise StubBadRequest(f"min_p must be in [0, 1], got {min_p}.")
    if penalty <= 0:
        raise StubBadRequest(f"repetition_penalty must be greater than zero, got {penalty}.")
    return {
        "temperature": temperature,
        "top_p": top_p,
        "top_k": -1 if top_k == 0 else top_k,
        "min_p": min_p,
        "repetition_penalty": penalty,
        "seed": seed,
    }


def _parse(
    body: dict[str, Any],
    gallery: _Gallery,
    generation_config: Mapping[str, Any],
    n_call: Callable[[tuple[str, ...]], int],
) -> StubRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise StubBadRequest("messages must be a non-empty list")
    texts: list[str] = []
    images: list[bytes] = []
    for message in messages:
        if not isinstance(message, dict):
            raise StubBadRequest("a message is not an object")
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise StubBadRequest("content must be a string or a list of parts")
        parts = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append(str(part.get("text", "")))
            elif kind == "image_url":
                image_url = part.get("image_url")
                url = image_url.get("url") if isinstance(image_url, dict) else image_url
                images.append(_decode_image(url))
            else:
                raise StubBadRequest(f"unsupported content part {kind!r}")
        texts.append("".join(parts))
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 16
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise StubBadRequest(f"max_tokens must be at least 1, got {max_tokens}.")
    keys = [gallery.key(data) for data in images]
    return StubRequest(
        messages=messages,
        images=images,
        image_keys=keys,
        prompt="\n".join(texts),
        max_tokens=max_tokens,
        model=str(body.get("model", "")),
        n_call=n_call(tuple(keys)),
        body=body,
        **_sampling(body, generation_config),
    )


def _difficulty(key: str) -> float:
    return int(hashlib.sha256(f"difficulty:{key}".encode()).hexdigest()[:8], 16) / 2**32


def perturb(table: Table, rng: random.Random, kind: str) -> Table:
    """`table` with one row dropped ("drop_row") or one cell's text changed ("change_cell")."""
    if kind == "drop_row" and table.n_rows > 1:
        r = rng.randrange(table.n_rows)
        cells = []
        for cell in table.cells:
            if cell.row <= r < cell.row + cell.rowspan:
                if cell.rowspan == 1:
                    continue
                cells.append(replace(cell, rowspan=cell.rowspan - 1))
            elif cell.row > r:
                cells.append(replace(cell, row=cell.row - 1))
            else:
                cells.append(cell)
        return Table(tuple(cells), table.n_rows - 1, table.n_cols)
    if kind == "change_cell":
        filled = [i for i, cell in enumerate(table.cells) if cell.text.strip()]
        if filled:
            i = rng.choice(filled)
            cells = list(table.cells)
            cells[i] = replace(cells[i], text=_garble(cells[i].text, rng))
            return Table(tuple(cells), table.n_rows, table.n_cols)
    return table


def _garble(text: str, rng: random.Random) -> str:
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    if digits:
        i = rng.choice(digits)
        return text[:i] + str((int(text[i]) + rng.randrange(1, 10)) % 10) + text[i + 1 :]
    return text[::-1] if len(set(text)) > 1 else text + "x"


def _truncate(text: str, rng: random.Random) -> str:
    cut = text[: max(1, int(len(text) * rng.uniform(0.3, 0.9)))].rstrip()
    while cut and is_complete(cut):
        cut = cut[:-1]
    return cut


def table_responder(tables: Mapping[str, str]) -> Responder:
    """The default responder: the table of a recognition prompt's image, noisy when sampling.

    `tables`: image SHA-256 → ground-truth HTML. See the module docstring for the noise.
    """
    known: dict[str, Table | None] = {}

    def table_of(key: str) -> Table | None:
        if key not in known:
            html = tables.get(key)
            known[key] = None if html is None else html_to_table(html)
        return known[key]

    def respond(request: StubRequest) -> str:
        fmt = recognition_format(request.prompt)
        if fmt is None or len(request.image_keys) != 1:
            return ""
        key = request.image_keys[0]
        table = table_of(key)
        if table is None:
            return ""
        truncate = False
        draw = f"{key}:{request.n_call}" if request.seed is None else f"{key}:seed:{request.seed}"
        if request.samples:
            rng = random.Random(draw)
            if rng.random() < min(1.0, request.temperature * _difficulty(key)):
                kind = rng.choices(("drop_row", "change_cell", "truncate"), (2, 2, 1))[0]
                truncate = kind == "truncate"
                table = perturb(table, rng, kind)
        text = table_to_otsl(table) if fmt == "otsl" else table_to_html(table)
        if truncate:
            text = _truncate(text, random.Random(f"{draw}:cut"))
        return text

    return respond


@dataclass
class _Config:
    latency_s: float = 0.0
    slots: int = 0  # calls served at once; 0: no limit
    max_waiting: int | None = None  # calls queued beyond `slots` before 503; None: no limit
    failure: str = "none"  # "none", "500", "503", "429"; "down": every route 503s
    fail_first: int | None = None  # fail only this many calls, then answer
    retry_after_s: float | None = 1.0


class VLMStub:
    """A running VLM stub: its `url`, counters, the requests it decoded, and its settings."""

    def __init__(
        self,
        responder: Responder,
        *,
        gallery: _Gallery,
        model: str,
        root: str,
        generation_config: Mapping[str, Any],
        config: _Config,
    ) -> None:
        self.url = ""
        self._responder = responder
        self._gallery = gallery
        self.model = model
        self.root = root
        self.generation_config = dict(generation_config)
        self._config = config
        self._lock = threading.Lock()
        self._requests: list[StubRequest] = []
        self._counts: Counter[tuple[str, ...]] = Counter()
        self._stats: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._failed_on_purpose = 0
        self._slots: asyncio.Semaphore | None = None

    # for tests --------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """calls, answered, failed, in_flight, max_in_flight, by_status (status → count)."""
        with self._lock:
            return {
                "calls": self._stats["calls"],
                "answered": self._stats["answered"],
                "failed": self._stats["failed"],
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "by_status": dict(self._by_status),
            }

    def requests(self) -> list[StubRequest]:
        """Every request the responder saw (bad ones excluded), in arrival order."""
        with self._lock:
            return list(self._requests)

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change latency_s, slots, max_waiting, failure, fail_first, retry_after_s, model, root."""
        with self._lock:
            for name, value in changes.items():
                if name in ("model", "root"):
                    setattr(self, name, value)
                elif hasattr(self._config, name):
                    setattr(self._config, name, value)
                    if name == "fail_first":
                        self._failed_on_purpose = 0
                else:
                    raise TypeError(f"unknown stub setting {name!r}")
            return dict(vars(self._config))

    # the server -------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    async def _health(self, _request: web.Request) -> web.Response:
        if self._config.failure == "down":
            return _error(503, "down on purpose")
        return web.json_response({"status": "ok"})

    async def _models(self, _request: web.Request) -> web.Response:
        if self._config.failure == "down":
            return _error(503, "down on purpose")
        card = {
            "id": self.model,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "vllm",
            "root": self.root,
            "parent": None,
            "max_model_len": 32768,
        }
        return web.json_response({"object": "list", "data": [card]})

    def _count(self, name: str, status: int | None = None) -> None:
        with self._lock:
            self._stats[name] += 1
            if status is not None:
                self._by_status[str(status)] += 1

    def _purposeful_failure(self) -> web.Response | None:
        with self._lock:
            failure = self._config.failure
            if failure == "none":
                return None
            if self._config.fail_first is not None:
                if self._failed_on_purpose >= self._config.fail_first:
                    return None
                self._failed_on_purpose += 1
            retry_after = self._config.retry_after_s
        status = 503 if failure == "down" else int(failure)
        headers = None
        if status in (429, 503) and retry_after is not None:
            headers = {"Retry-After": f"{retry_after:g}"}
        return _error(status, f"failing on purpose ({failure})", headers)

    async def _chat(self, request: web.Request) -> web.Response:
        self._count("calls")
        with self._lock:
            limit = self._config.slots
            waiting = self._config.max_waiting
            overloaded = limit > 0 and waiting is not None and self._in_flight >= limit + waiting
            if not overloaded:
                self._in_flight += 1
                self._max_in_flight = max(self._max_in_flight, self._in_flight)
        if overloaded:
            self._count("failed", 503)
            return _error(503, "server overloaded: too many requests waiting")
        try:
            response = await self._serve(request)
        finally:
            with self._lock:
                self._in_flight -= 1
        self._count("answered" if response.status == 200 else "failed", response.status)
        return response

    async def _serve(self, request: web.Request) -> web.Response:
        if self._config.slots > 0:
            if self._slots is None or self._slots_size != self._config.slots:
                self._slots = asyncio.Semaphore(self._config.slots)
                self._slots_size = self._config.slots
            async with self._slots:
                return await self._answer(request)
        return await self._answer(request)

    async def _answer(self, request: web.Request) -> web.Response:
        if self._config.latency_s > 0:
            await asyncio.sleep(self._config.latency_s)
        failed = self._purposeful_failure()
        if failed is not None:
            return failed
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "body is not a JSON object")
        try:
            parsed = _parse(body, self._gallery, self.generation_config, self._n_call)
            with self._lock:
                self._requests.append(parsed)
            text = await asyncio.to_thread(self._responder, parsed)
        except StubBadRequest as exc:
            return _error(400, str(exc))
        except Exception as exc:  # the responder broke: a server error, named
            return _error(500, f"{type(exc).__name__}: {exc}")
        text, finish = _cut(text, parsed.max_tokens)
        prompt_tokens = count_tokens(parsed.prompt) + 256 * len(parsed.images)
        completion_tokens = count_tokens(text)
        return web.json_response(
            {
                "id": f"chatcmpl-{parsed.n_call}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    def _n_call(self, keys: tuple[str, ...]) -> int:
        with self._lock:
            self._counts[keys] += 1
            return self._counts[keys]


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    kind = "BadRequestError" if status == 400 else "ServiceUnavailableError"
    payload = {"object": "error", "message": message, "type": kind, "code": status}
    return web.Response(
        status=status, text=json.dumps(payload), content_type="application/json", headers=headers
    )


@contextlib.contextmanager
def vlm_stub(
    responder: Responder | None = None,
    *,
    tables: Mapping[str, str] | None = None,
    images: Iterable[Path | bytes] = (),
    latency: float = 0.0,
    slots: int = 0,
    max_waiting: int | None = None,
    model: str = "trivia-vlm-stub",
    root: str = "/models/trivia-vlm-stub",
    generation_config: Mapping[str, Any] = QWEN25_VL_GENERATION_CONFIG,
    host: str = "127.0.0.1",
    port: int = 0,
    **config: Any,
) -> Iterator[VLMStub]:
    """Run a VLM stub for the `with` block: `with vlm_stub(tables=gt, images=paths) as stub:`.

    `responder` replaces the default `table_responder(tables)`; `images` are the source files
    the stub recognises (by thumbnail) in what it is sent. `latency` seconds per call, `slots`
    calls at once (0: no limit), `max_waiting` more queued before a 503. `config`: failure,
    fail_first, retry_after_s.
    """
    stub = VLMStub(
        responder or table_responder(tables or {}),
        gallery=_Gallery(images),
        model=model,
        root=root,
        generation_config=generation_config,
        config=_Config(latency_s=latency, slots=slots, max_waiting=max_waiting, **config),
    )
    thread = AppThread(stub.app(), host, port, "vlm-stub")
    stub.url = f"http://{host}:{thread.port}"
    try:
        yield stub
    finally:
        thread.stop()


def examples_tables(folder: Path) -> tuple[dict[str, str], list[Path]]:
    """(image SHA-256 → ground-truth HTML, image paths) of a PubTabNet examples folder."""
    from trivia.dataset import pubtabnet_html

    tables, paths = {}, []
    for line in (folder / "examples.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        path = folder / "images" / record["filename"]
        tables[image_key(path)] = pubtabnet_html(record["html"])
        paths.append(path)
    return tables, paths


def main(argv: list[str] | None = None) -> None:
    """Serve the stub until interrupted (the quick start's stand-in for a vLLM server)."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.vlm_stub")
    parser.add_argument("--examples", type=Path, default=Path("examples/pubtabnet"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    tables, paths = examples_tables(args.examples)
    from tests.support.qa_responder import QAResponder

    recognise = table_responder(tables)
    questions = QAResponder(tables)  # good questions, and one bad one of every kind

    def respond(request: StubRequest) -> str:
        return recognise(request) or questions(request)

    with vlm_stub(
        respond, images=paths, latency=args.latency, host=args.host, port=args.port
    ) as stub:
        print(f"VLM stub serving {len(paths)} example tables at {stub.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
