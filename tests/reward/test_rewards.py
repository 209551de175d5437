"""`POST /v1/rewards` end to end: live gateway, RQ workers, valkey, the stub's lookup answerer."""

from __future__ import annotations

import time
import uuid

import pytest

HEADER = ["Name", "Age", "City"]
ROWS = [["Bob", "42", "Oslo"], ["Ann", "37", "Rome"], ["Eve", "29", "Lima"]]
PAIRS = [
    {"question": f"What is the {column} of {row[0]}?", "answer": row[i]}
    for row in ROWS
    for i, column in enumerate(HEADER)
    if i > 0
]


def grid(tag: str) -> list[list[str]]:
    """The table, with a row that makes it unseen by the answer cache."""
    return [HEADER, *[list(r) for r in ROWS], ["Ref", tag, "-"]]


def otsl(cells: list[list[str]]) -> str:
    return "".join(
        "".join(f"<fcel>{c}" if c else "<ecel>" for c in row) + "<nl>\n" for row in cells
    )


def html(cells: list[list[str]]) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells)
    return f"<table>{rows}</table>"


def item(id_: str, completion: str, pairs=PAIRS, **extra) -> dict:
    return {"id": id_, "completion": completion, "qa_pairs": pairs, **extra}


def post(stack, items, metrics=("qa_f1",)) -> list[dict]:
    with stack.client() as client:
        response = client.post("/v1/rewards", json={"items": items, "metrics": list(metrics)})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_complete_blanked_truncated_html_and_duplicate_completions(stack, stub):
    cells = grid(uuid.uuid4().hex[:8])
    blanked = [list(r) for r in cells]
    blanked[1][1] = ""  # Bob's age
    complete = otsl(cells)
    results = post(
        stack,
        [
            item("complete", complete),
            item("blanked", otsl(blanked)),
            item("truncated", complete[: len(complete) // 2]),
            item("html", html(cells)),
            item("dup-1", complete),
            item("dup-2", complete),
        ],
    )
    by_id = {r["id"]: r for r in results}
    assert [r["id"] for r in results] == [
        "complete", "blanked", "truncated", "html", "dup-1", "dup-2"
    ]  # fmt: skip
    assert by_id["complete"]["valid"] is True
    assert by_id["complete"]["qa_f1"] == 1.0
    assert [a["prediction"] for a in by_id["complete"]["answers"]] == [p["answer"] for p in PAIRS]
    assert by_id["html"]["qa_f1"] == 1.0
    assert by_id["blanked"]["qa_f1"] == pytest.approx(5 / 6)
    assert by_id["blanked"]["answers"][0]["f1"] == 0.0
    assert by_id["blanked"]["error"] is None
    assert by_id["truncated"] == {
        "id": "truncated", "valid": False, "qa_f1": 0.0, "teds": None, "teds_norm": None,
        "error": None, "answers": [],
    }  # fmt: skip
    assert by_id["dup-1"] == {**by_id["complete"], "id": "dup-1"}
    assert by_id["dup-2"] == {**by_id["complete"], "id": "dup-2"}
    # Each unique table's questions were asked once: OTSL and HTML of one table are one table.
    assert stub.stats()["answered"] == 2 * len(PAIRS)


def test_a_repeated_request_is_served_from_the_answer_cache(stack, stub):
    items = [item("a", otsl(grid(uuid.uuid4().hex[:8])))]
    first = post(stack, items)
    calls = stub.stats()["calls"]
    assert calls == len(PAIRS)
    assert post(stack, items) == first
    assert stub.stats()["calls"] == calls


def test_teds_is_scored_against_the_solution_when_asked(stack, stub):
    cells = grid(uuid.uuid4().hex[:8])
    changed = [list(r) for r in cells]
    changed[2][2] = "Roma"
    results = post(
        stack,
        [
            item("same", otsl(cells), solution=html(cells)),
            item("changed", otsl(changed), solution=html(cells)),
            item("cut", otsl(cells)[:30], solution=html(cells)),
            item("no-solution", otsl(cells)),
        ],
        metrics=("qa_f1", "teds"),
    )
    assert results[0]["teds"] == results[0]["teds_norm"] == 1.0
    assert 0.9 < results[1]["teds"] < 1.0
    assert results[2]["teds"] == results[2]["teds_norm"] == 0.0
    assert results[3]["teds"] is results[3]["teds_norm"] is None


def test_no_questions_is_null_not_zero(stack, stub):
    results = post(stack, [item("none", otsl(grid("x")), pairs=[])])
    assert results[0]["valid"] is True
    assert results[0]["qa_f1"] is None
    assert results[0]["error"] is None
    assert stub.stats()["calls"] == 0


def assert_failed_not_zero(results: list[dict], words: tuple[str, ...]) -> None:
    for result in results:
        assert result["valid"] is True
        assert result["qa_f1"] is None
        assert any(w in result["error"] for w in words), result["error"]
        assert all(a["f1"] is None for a in result["answers"])


def test_qa_503_gives_null_with_the_reason(stack, stub):
    stub.configure(failure="503")
    results = post(stack, [item("a", otsl(grid(uuid.uuid4().hex[:8])))])
    assert_failed_not_zero(results, ("503",))


def test_a_hanging_qa_service_gives_null_within_the_deadline(stack, stub):
    stub.configure(failure="hang")
    started = time.monotonic()
    results = post(stack, [item("a", otsl(grid(uuid.uuid4().hex[:8])))])
    assert time.monotonic() - started < 10 + 3
    assert_failed_not_zero(results, ("timed out", "timeout", "deadline"))


def test_a_gone_qa_service_gives_null_with_the_reason(stack, stub_process):
    stub_process.stop()
    try:
        results = post(stack, [item("a", otsl(grid(uuid.uuid4().hex[:8])))])
    finally:
        stub_process.start()
    assert_failed_not_zero(results, ("connect",))
