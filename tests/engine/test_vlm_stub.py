"""The VLM stub itself: it decodes what it is sent, refuses bad images, and its noise repeats."""

from __future__ import annotations

import asyncio
import base64

import httpx
from tests.support.vlm_stub import StubRequest, vlm_stub

from trivia.engine.images import image_key
from trivia.engine.prompts import recognition_prompt
from trivia.engine.sampling_params import SamplingParams
from trivia.engine.vlm import VLMClient
from trivia.tables import html_to_table, is_complete, table_to_otsl

PROMPT = recognition_prompt("otsl")


def _chat(url: str, parts: list[dict]) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": parts}], "max_tokens": 64}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)


def test_bad_data_urls_get_400_and_good_ones_reach_the_responder(image_paths):
    seen: list[StubRequest] = []

    def respond(request: StubRequest) -> str:
        seen.append(request)
        return f"{len(request.images)} image(s), {request.prompt!r}"

    good = "data:image/png;base64," + base64.b64encode(image_paths[0].read_bytes()).decode()
    bad_urls = [
        "http://example.com/table.png",  # not a data URL
        "data:image/png;base64,%%%",  # not base64
        "data:image/png;base64," + base64.b64encode(b"plain text").decode(),  # not an image
    ]
    with vlm_stub(respond) as stub:
        for url in bad_urls:
            response = _chat(stub.url, [{"type": "image_url", "image_url": {"url": url}}])
            assert response.status_code == 400, url
        response = _chat(
            stub.url,
            [
                {"type": "text", "text": "Read "},
                {"type": "image_url", "image_url": {"url": good}},
                {"type": "text", "text": "this."},
            ],
        )
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "1 image(s), 'Read this.'"
        assert stub.stats()["by_status"] == {"400": 3, "200": 1}
    (request,) = seen
    assert request.images == [image_paths[0].read_bytes()]
    assert request.image_keys == [image_key(image_paths[0])] and request.n_call == 1


def _samples(url: str, path, k: int, temperature: float) -> list[str]:
    async def go():
        async with VLMClient(url, max_pixels=100 * 28 * 28, min_pixels=784) as client:
            encoded = client.encode(path)
            return [
                (
                    await client.complete(
                        PROMPT, image_url=encoded, sampling=SamplingParams(temperature=temperature)
                    )
                ).text
                for _ in range(k)
            ]

    return asyncio.run(go())


def test_noise_is_deterministic_per_image_and_call_and_absent_at_temperature_zero(
    image_paths, truth_by_key
):
    with (
        vlm_stub(tables=truth_by_key, images=image_paths) as first,
        vlm_stub(tables=truth_by_key, images=image_paths) as second,
    ):
        runs = [
            [_samples(stub.url, path, 6, 1.0) for path in image_paths] for stub in (first, second)
        ]
        exact = _samples(first.url, image_paths[0], 2, 0.0)
    assert runs[0] == runs[1]  # the same images and call numbers give the same outputs
    truth = table_to_otsl(html_to_table(truth_by_key[image_key(image_paths[0])]))
    assert exact == [truth, truth]
    outputs = [text for image in runs[0] for text in image]
    distinct_per_image = [len(set(image)) for image in runs[0]]
    assert min(distinct_per_image) == 1 and max(distinct_per_image) > 2  # images differ in noise
    assert any(not is_complete(text) for text in outputs)  # some outputs are cut short
    assert all(text for text in outputs)


def test_unknown_images_and_other_prompts_get_empty_replies(image_paths):
    with vlm_stub(tables={}) as stub:
        assert _samples(stub.url, image_paths[0], 1, 1.0) == [""]


def test_a_failing_responder_answers_500_with_its_error():
    def broken(request: StubRequest) -> str:
        raise KeyError("no such table")

    with vlm_stub(broken) as stub:
        response = _chat(stub.url, [{"type": "text", "text": "hi"}])
    assert response.status_code == 500 and "KeyError" in response.text


def _recognise(url: str, path, **fields) -> httpx.Response:
    async def encode():
        async with VLMClient(url, model="m", max_pixels=100 * 28 * 28, min_pixels=784) as c:
            return c.encode(path)

    image = {"type": "image_url", "image_url": {"url": asyncio.run(encode())}}
    body = {"model": "m", "messages": [{"role": "user", "content": [image, PROMPT]}], **fields}
    body["messages"][0]["content"][1] = {"type": "text", "text": PROMPT}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)


def test_unset_sampling_fields_come_from_the_greedy_model_defaults(image_paths, truth_by_key):
    with vlm_stub(tables=truth_by_key, images=image_paths) as stub:
        only_temperature = [
            _recognise(stub.url, path, temperature=1.0, max_tokens=4096).json()
            for path in image_paths
            for _ in range(3)
        ]
        requests = stub.requests()
    assert all(not r.samples and r.top_k == 1 and r.top_p == 0.001 for r in requests)
    assert all(r.repetition_penalty == 1.05 for r in requests)
    texts = [reply["choices"][0]["message"]["content"] for reply in only_temperature]
    assert all(len(set(texts[i : i + 3])) == 1 for i in range(0, len(texts), 3))


def test_answers_stop_at_max_tokens_with_finish_reason_length(image_paths, truth_by_key):
    with vlm_stub(tables=truth_by_key, images=image_paths) as stub:
        cut = _recognise(stub.url, image_paths[0], temperature=0.0, max_tokens=10).json()
        whole = _recognise(stub.url, image_paths[0], temperature=0.0, max_tokens=4096).json()
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["usage"]["completion_tokens"] == 10
    assert whole["choices"][0]["finish_reason"] == "stop"
    assert whole["choices"][0]["message"]["content"].startswith(
        cut["choices"][0]["message"]["content"]
    )


def test_out_of_range_sampling_fields_get_400(image_paths):
    with vlm_stub(images=image_paths) as stub:
        for bad in ({"top_p": 0.0}, {"temperature": -0.5}, {"top_k": -3}, {"min_p": 2.0}):
            assert _recognise(stub.url, image_paths[0], **bad).status_code == 400, bad


def test_an_overloaded_server_answers_503():
    import threading

    entered, release = threading.Event(), threading.Event()

    def slow(request: StubRequest) -> str:
        entered.set()
        release.wait(timeout=60)
        return "done"

    with vlm_stub(slow, slots=1, max_waiting=0) as stub:
        first: list[int] = []
        holder = threading.Thread(
            target=lambda: first.append(
                _chat(stub.url, [{"type": "text", "text": "a"}]).status_code
            )
        )
        holder.start()
        assert entered.wait(timeout=60)  # the one slot is taken, nothing may wait
        overflow = [_chat(stub.url, [{"type": "text", "text": "b"}]).status_code for _ in range(2)]
        release.set()
        holder.join()
    assert overflow == [503, 503] and first == [200]
