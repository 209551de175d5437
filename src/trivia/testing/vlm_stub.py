"""A scriptable OpenAI-compatible VLM server for tests: images in as data URLs, text out.

It is the OpenAI stub (`tests.support.openai_stub`: real HTTP on 127.0.0.1, latency, slots,
failures, counters) with a responder that decodes each request the way a VLM server must:
every `image_url` part has to be a base64 `data:image/...` URL of an image Pillow can open, or
the call gets a 400. The responder sees a `StubRequest` (text, decoded images, their keys,
sampling settings) and returns the reply text.

The default responder (`table_responder`) plays a table-recognition model: to a recognition
prompt (`trivia.engine.prompts`) about one image it answers that image's table from `tables`
(image SHA-256 → ground-truth HTML), in OTSL or HTML as the prompt asks; anything else gets "".
At temperature > 0 it is unsure in a way that is deterministic: a call is perturbed with
probability `min(1, temperature × difficulty)`, where the image's difficulty in [0, 1) comes
from its key, and the perturbation (drop a row, change a cell's text, or cut the output short)
is drawn from a generator seeded with the image key and the call's number for that image. So
consistency scores vary across images and repeat across runs.

Images are keyed by the image they were made from (`trivia.engine.images.source_key`): a client
that resized an image before sending still names the original file's key.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tests.support.openai_stub import StubBadRequest, StubServer, openai_stub

from trivia.engine.images import decode_data_url, source_key
from trivia.engine.prompts import recognition_format
from trivia.tables import Table, html_to_table, is_complete, table_to_html, table_to_otsl

__all__ = ["StubRequest", "VLMStub", "perturb", "table_responder", "vlm_stub"]


@dataclass
class StubRequest:
    """One chat call as the VLM stub decoded it."""

    messages: list[dict[str, Any]]
    images: list[bytes]  # decoded from the data URLs, in order
    image_keys: list[str]  # the source image's SHA-256 for each image
    prompt: str  # text parts joined: "" within a message, "\n" between messages
    temperature: float
    max_tokens: int
    model: str
    n_call: int  # 1-based number of this call among calls about the same images
    body: dict[str, Any] = field(default_factory=dict, repr=False)  # the whole request


Responder = Callable[[StubRequest], str]


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


def _parse(body: dict[str, Any], n_call: Callable[[tuple[str, ...]], int]) -> StubRequest:
    texts: list[str] = []
    images: list[bytes] = []
    for message in body["messages"]:
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
    keys = [source_key(data) for data in images]
    return StubRequest(
        messages=body["messages"],
        images=images,
        image_keys=keys,
        prompt="\n".join(texts),
        temperature=float(body.get("temperature", 1.0)),
        max_tokens=int(body.get("max_tokens") or 16),
        model=str(body.get("model", "")),
        n_call=n_call(tuple(keys)),
        body=body,
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
    """The default responder: the table of a recognition prompt's image, noisy at temperature > 0.

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
        if request.temperature > 0:
            rng = random.Random(f"{key}:{request.n_call}")
            if rng.random() < min(1.0, request.temperature * _difficulty(key)):
                kind = rng.choices(("drop_row", "change_cell", "truncate"), (2, 2, 1))[0]
                truncate = kind == "truncate"
                table = perturb(table, rng, kind)
        text = table_to_otsl(table) if fmt == "otsl" else table_to_html(table)
        if truncate:
            text = _truncate(text, random.Random(f"{key}:{request.n_call}:cut"))
        return text

    return respond


class VLMStub:
    """A running VLM stub: its `url`, counters, and the requests it decoded."""

    def __init__(self, server: StubServer, requests: list[StubRequest], lock: threading.Lock):
        self.server = server
        self.url = server.url
        self._requests = requests
        self._lock = lock

    def stats(self) -> dict[str, Any]:
        """The OpenAI stub's counters: calls, answered, failed, max_in_flight, by_status, …"""
        return self.server.stats()

    def requests(self) -> list[StubRequest]:
        """Every request the responder saw (bad ones excluded), in arrival order."""
        with self._lock:
            return list(self._requests)

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change `StubConfig` fields (latency_s, slots, failure, fail_first, …) while running."""
        return self.server.configure(**changes)


@contextlib.contextmanager
def vlm_stub(
    responder: Responder | None = None,
    *,
    tables: Mapping[str, str] | None = None,
    latency: float = 0.0,
    slots: int = 0,
    model: str = "trivia-vlm-stub",
    **config: Any,
) -> Iterator[VLMStub]:
    """Run a VLM stub for the `with` block: `with vlm_stub(tables=gt) as stub: stub.url`.

    `responder` replaces the default `table_responder(tables)`; wrap the default to keep it for
    the prompts it knows. `latency` seconds per call, `slots` calls at once (0: no limit);
    `config` sets other `StubConfig` fields (failure, fail_first, retry_after_s).
    """
    answer = responder or table_responder(tables or {})
    seen: list[StubRequest] = []
    lock = threading.Lock()
    counts: Counter[tuple[str, ...]] = Counter()

    def n_call(keys: tuple[str, ...]) -> int:
        counts[keys] += 1
        return counts[keys]

    def on_call(body: dict[str, Any], _n: int) -> str:
        request = _parse(body, n_call)
        with lock:
            seen.append(request)
        return answer(request)

    with openai_stub(
        latency_s=latency,
        slots=slots,
        model=model,
        record_messages=False,
        responder=on_call,
        **config,
    ) as server:
        yield VLMStub(server, seen, lock)
