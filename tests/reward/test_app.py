"""The live gateway's HTTP contract: auth, malformed and oversized input, probes, schema."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import (
    AUTH,
    MAX_BODY_BYTES,
    MAX_ITEMS,
    MAX_QUESTIONS_PER_ITEM,
    MAX_QUESTIONS_PER_REQUEST,
)

OTSL = "<fcel>Name<fcel>Age<nl>\n<fcel>Bob<fcel>42<nl>\n"


def body(n: int = 1) -> dict:
    return {"items": [{"id": str(i), "completion": OTSL} for i in range(n)]}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + AUTH["Authorization"][7:]},
    ],
)
def test_v1_needs_the_bearer_token(stack, headers):
    with stack.client(headers=headers) as client:
        response = client.post("/v1/rewards", json=body())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_probes_and_metrics_need_no_token(stack):
    with stack.client(headers={}) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["workers"] >= 1
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "trivia_requests_total" in metrics.text


def test_malformed_json_is_400_with_a_reason(stack):
    with stack.client() as client:
        response = client.post(
            "/v1/rewards",
            content=b'{"items": [',
            headers={**AUTH, "content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed JSON")


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"items": [{"id": True, "completion": OTSL}]},
        {"items": [{"id": 1, "completion": OTSL}]},
        {"items": [{"id": "a", "completion": OTSL, "extra": 1}]},
        {"items": [], "metrics": ["bleu"]},
        {"items": [{"id": "a", "completion": OTSL, "qa_pairs": [{"question": "q"}]}]},
    ],
)
def test_schema_errors_are_422(stack, payload):
    with stack.client() as client:
        response = client.post("/v1/rewards", json=payload)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_a_declared_oversized_body_is_refused_before_it_is_sent(stack):
    with stack.client() as client:
        response = client.post(
            "/v1/rewards",
            content=b"x" * (MAX_BODY_BYTES + 1),
            headers={**AUTH, "content-type": "application/json"},
        )
    assert response.status_code == 413


def test_a_streamed_body_is_cut_off_at_the_limit(stack):
    sent = 0

    def chunks():
        nonlocal sent
        yield b'{"items": [{"id": "a", "completion": "'
        for _ in range(64):  # 4 MiB in all, no Content-Length (chunked)
            sent += 65536
            yield b"x" * 65536

    with stack.client() as client:
        try:
            response = client.post(
                "/v1/rewards", content=chunks(), headers={"content-type": "application/json"}
            )
        except httpx.TransportError:  # the server may close before the client is done
            pytest.skip("connection closed before the 413 was read")
    assert response.status_code == 413
    assert "bytes" in response.json()["detail"]


def test_too_many_items_is_413(stack):
    with stack.client() as client:
        response = client.post("/v1/rewards", json=body(MAX_ITEMS + 1))
    assert response.status_code == 413
    assert str(MAX_ITEMS) in response.json()["detail"]


def test_an_empty_request_is_an_empty_answer(stack):
    with stack.client() as client:
        response = client.post("/v1/rewards", json={"items": []})
    assert response.status_code == 200
    assert response.json() == {"results": []}


def test_openapi_documents_auth_and_every_error(stack):
    with stack.client(headers={}) as client:
        schema = client.get("/openapi.json").json()
    post = schema["paths"]["/v1/rewards"]["post"]
    assert set(post["responses"]) >= {"200", "400", "401", "413", "422", "503"}
    assert post["security"]


def _questions(n: int) -> list[dict]:
    return [{"question": f"Question {i}?", "answer": "1"} for i in range(n)]


def test_too_many_questions_in_one_item_is_422_naming_the_limit(stack):
    items = [
        {"id": "ok", "completion": OTSL, "qa_pairs": _questions(2)},
        {"id": "big", "completion": OTSL, "qa_pairs": _questions(MAX_QUESTIONS_PER_ITEM + 1)},
    ]
    with stack.client() as client:
        response = client.post("/v1/rewards", json={"items": items})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert f"item 1 ('big') has {MAX_QUESTIONS_PER_ITEM + 1} questions" in detail
    assert f"at most {MAX_QUESTIONS_PER_ITEM} per item (max_questions_per_item)" in detail


def test_too_many_questions_in_one_request_is_413_naming_the_limit(stack):
    per_item = MAX_QUESTIONS_PER_ITEM
    n = MAX_QUESTIONS_PER_REQUEST // per_item + 1
    items = [{"id": str(i), "completion": OTSL, "qa_pairs": _questions(per_item)} for i in range(n)]
    with stack.client() as client:
        response = client.post("/v1/rewards", json={"items": items})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert f"{n * per_item} questions; at most {MAX_QUESTIONS_PER_REQUEST} per request" in detail
    assert "max_questions_per_request" in detail


def test_a_request_without_the_token_is_refused_before_its_body_is_read(stack):
    # Declare a body and send none of it: the 401 must come without waiting for it.
    address = urlsplit(stack.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as conn:
        conn.sendall(
            b"POST /v1/rewards HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500000\r\n\r\n"
        )
        reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 401"), reply
