"""The VLM client against the VLM stub over real HTTP: images travel as data URLs and arrive."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image
from tests.support.vlm_stub import vlm_stub

from trivia.engine.images import image_key, smart_resize
from trivia.engine.prompts import recognition_prompt
from trivia.engine.sampling_params import GREEDY
from trivia.engine.vlm import VLMClient
from trivia.llm import LLMError
from trivia.tables import html_to_otsl, html_to_table, table_to_otsl

LIMITS = {"min_pixels": 64 * 28 * 28, "max_pixels": 160 * 28 * 28}


def test_images_arrive_decoded_resized_and_keyed_by_their_source(image_paths, truth_by_key):
    chosen = image_paths[:4]
    with vlm_stub(tables=truth_by_key, images=image_paths) as stub:

        async def go():
            async with VLMClient(stub.url, **LIMITS) as client:
                return await asyncio.gather(
                    *(client.complete(recognition_prompt("otsl"), path) for path in chosen)
                )

        replies = asyncio.run(go())
        requests = sorted(stub.requests(), key=lambda r: r.image_keys[0])
    assert len(requests) == 4
    for path, reply in zip(chosen, replies, strict=True):
        key = image_key(path)
        expected = table_to_otsl(html_to_table(truth_by_key[key]))
        assert reply.text == expected and reply.finish_reason == "stop"
        (request,) = [r for r in requests if r.image_keys == [key]]
        (sent,) = request.images
        with Image.open(path) as original, Image.open(io.BytesIO(sent)) as got:
            width, height = original.size
            assert got.size == smart_resize(height, width, **LIMITS)[::-1]
        assert request.temperature == 0.0 and request.max_tokens == 4096
        assert request.prompt == recognition_prompt("otsl").removesuffix("<image>")


def test_html_prompt_gets_html_and_a_text_only_call_carries_no_image(image_paths, truth_by_key):
    path = image_paths[0]
    with vlm_stub(tables=truth_by_key, images=image_paths) as stub:

        async def go():
            async with VLMClient(stub.url, **LIMITS) as client:
                html = await client.complete(recognition_prompt("html"), path)
                blind = await client.complete(
                    "What is the total?", None, sampling=GREEDY.with_max_tokens(16)
                )
                return html, blind

        html, blind = asyncio.run(go())
        first, second = stub.requests()
    truth = truth_by_key[image_key(path)]
    assert html.text.startswith("<table>") and html_to_otsl(html.text) == html_to_otsl(truth)
    assert blind.text == ""  # the default responder answers only recognition prompts
    assert second.images == [] and second.image_keys == [] and second.max_tokens == 16
    assert second.messages == [
        {"role": "user", "content": [{"type": "text", "text": "What is the total?"}]}
    ]
    assert len(first.images) == 1


def test_the_pixel_limits_change_what_is_sent(image_paths):
    path = image_paths[0]
    with vlm_stub() as stub:

        async def go(limits):
            async with VLMClient(stub.url, model="m", **limits) as client:
                await client.complete("<image>Describe.", path)

        asyncio.run(go({"min_pixels": 784, "max_pixels": 40 * 28 * 28}))
        asyncio.run(go({"min_pixels": 400 * 28 * 28, "max_pixels": 800 * 28 * 28}))
        small, large = (r.images[0] for r in stub.requests())
    with Image.open(io.BytesIO(small)) as a, Image.open(io.BytesIO(large)) as b:
        assert a.width * a.height <= 40 * 28 * 28
        assert 400 * 28 * 28 <= b.width * b.height <= 800 * 28 * 28


def test_requests_are_limited_per_endpoint_and_spread_over_endpoints(image_paths):
    with vlm_stub(latency=0.05) as one, vlm_stub(latency=0.05) as two:

        async def go():
            async with VLMClient(
                [one.url, two.url], model="m", max_concurrency_per_endpoint=2, **LIMITS
            ) as client:
                url = client.encode(image_paths[0])
                await asyncio.gather(
                    *(client.complete("<image>x", image_url=url) for _ in range(12))
                )

        asyncio.run(go())
        assert one.stats()["max_in_flight"] == two.stats()["max_in_flight"] == 2
        assert one.stats()["calls"] == two.stats()["calls"] == 6


def test_server_errors_surface_as_llmerror_after_retries(image_paths):
    with vlm_stub(failure="503", retry_after_s=None) as stub:

        async def go():
            async with VLMClient(
                stub.url, model="m", max_retries=1, backoff_base_s=0.01, **LIMITS
            ) as client:
                await client.complete("<image>x", image_paths[0])

        with pytest.raises(LLMError) as caught:
            asyncio.run(go())
        assert caught.value.status_code == 503 and "VLM call to" in str(caught.value)
        assert stub.stats()["calls"] == 2


def test_an_unreadable_image_fails_before_any_call():
    with vlm_stub() as stub:

        async def go():
            async with VLMClient(stub.url, model="m") as client:
                await client.complete("<image>x", b"not an image")

        with pytest.raises(ValueError, match="not a readable image"):
            asyncio.run(go())
        assert stub.stats()["calls"] == 0
