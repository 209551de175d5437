"""`generate_qa` against the VLM stub, with the shipped PubTabNet images and their ground truth."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.support.qa_responder import (
    BAD_ITEM_REASONS,
    QAResponder,
    load_examples,
    sample_record,
    table_pairs,
)
from tests.support.vlm_stub import StubBadRequest, StubRequest, VLMStub, vlm_stub

from trivia.dataset import validate_jsonl
from trivia.engine.qa_candidate import DROP_REASONS, Location
from trivia.engine.qa_dataset import write_dataset
from trivia.engine.qa_diversity import coverage
from trivia.engine.qa_grounding import ground, locate_answer
from trivia.engine.qa_pipeline import QASettings, generate_qa, qa_key
from trivia.engine.qa_prompts import question_in
from trivia.engine.runner import RunSummary
from trivia.engine.store import ResultStore
from trivia.engine.vlm import VLMClient
from trivia.qa.lookup import answer_question

NAMES = {
    "PMC4840965_004_00.png",  # 28 × 4, many "1.000": answers need the question to be located
    "PMC3826085_003_00.png",  # 18 × 5, 68 cell questions
    "PMC4776821_005_00.png",  # 5 × 5
    "PMC5198506_004_00.png",  # no cell question can be asked: nothing is kept
}
BROKEN = "PMC4776821_005_00.png"  # its first generation reply is not JSON
EXAMPLES = load_examples(NAMES)
TABLES = {example["key"]: example["html"] for example in EXAMPLES.values()}
PATHS = [example["path"] for example in EXAMPLES.values()]
SETTINGS = QASettings(per_image=8, rounds=3, candidates_per_round=6, pool_factor=1.5)


def _records() -> list[dict[str, Any]]:
    return [sample_record(EXAMPLES[name]) for name in sorted(NAMES)]


def _run(
    stub: VLMStub,
    store: ResultStore,
    records: list[dict[str, Any]],
    settings: QASettings = SETTINGS,
    options: dict[str, Any] | None = None,
    **clients: Any,
) -> tuple[RunSummary, list[str]]:
    async def go() -> tuple[RunSummary, list[str]]:
        async with (
            VLMClient(stub.url, **clients) as generator,
            VLMClient(stub.url, **clients) as verifier,
        ):
            return await generate_qa(
                generator, verifier, records, store, settings, workers=4, **(options or {})
            )

    return asyncio.run(go())


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run over the four images; what it wrote and what the stub saw."""
    folder = tmp_path_factory.mktemp("qa")
    responder = QAResponder(TABLES, broken={EXAMPLES[BROKEN]["key"]})
    with vlm_stub(responder, images=PATHS) as stub, ResultStore(folder / "progress.jsonl") as store:
        summary, keys = _run(stub, store, _records())
        results = {Path(r["image"]).name: r for r in store.records()}
        used: list[dict[str, Any]] = []
        rows = write_dataset(
            store,
            keys,
            folder / "dataset.jsonl",
            rejected=folder / "rejected.jsonl",
            on_record=used.append,
        )
        prompts = [r.prompt for r in stub.requests()]
    return {
        "summary": summary,
        "results": results,
        "rows": rows,
        "used": used,
        "drops": sum((Counter(r["drops"]) for r in results.values()), Counter()),
        "rejected": folder / "rejected.jsonl",
        "dataset": folder / "dataset.jsonl",
        "prompts": prompts,
        "responder": responder,
    }


def test_every_drop_reason_is_exercised_and_counted(finished: dict[str, Any]) -> None:
    summary: RunSummary = finished["summary"]
    drops: Counter[str] = finished["drops"]
    assert summary.done == 4 and not summary.failed
    assert set(drops) == set(DROP_REASONS)
    # Each first-round bad item ends under its reason, once per image that got it.
    with_pairs = sum(len(table_pairs(html)) >= 3 for html in TABLES.values())
    expected = Counter(
        reason
        for kind, reason in BAD_ITEM_REASONS.items()
        for html in TABLES.values()
        if len(table_pairs(html)) >= 3 or kind not in ("wrong", "same_words", "near_duplicate")
    )
    for reason, count in expected.items():
        if reason == "duplicate":
            assert drops[reason] >= count
        else:
            assert drops[reason] == count, reason
    assert with_pairs == 3
    assert drops["bad_json"] == 1


def test_every_candidate_is_kept_or_dropped_once(finished: dict[str, Any]) -> None:
    for result in finished["results"].values():
        dropped = sum(n for reason, n in result["drops"].items() if reason != "bad_json")
        assert result["candidates"] == len(result["qa_pairs"]) + dropped
        assert len(result["qa_pairs"]) <= SETTINGS.per_image


def test_kept_questions_are_right_and_never_bad(finished: dict[str, Any]) -> None:
    for name, result in finished["results"].items():
        html = EXAMPLES[name]["html"]
        for pair in result["qa_pairs"]:
            assert answer_question(html, pair["question"]) == pair["answer"]
            assert "capital of France" not in pair["question"]
        questions = [p["question"] for p in result["qa_pairs"]]
        assert len(set(questions)) == len(questions)
    assert finished["results"]["PMC5198506_004_00.png"]["qa_pairs"] == []


def test_rounds_run_until_the_pool_is_full(finished: dict[str, Any]) -> None:
    results = finished["results"]
    # 6 questions a round, 12 wanted in the pool: the broken reply costs the 5 × 5 table a round.
    assert results["PMC3826085_003_00.png"]["rounds"] == 2
    assert results["PMC4776821_005_00.png"]["rounds"] == 3
    assert results["PMC5198506_004_00.png"]["rounds"] == 3
    later = [p for p in finished["prompts"] if "already proposed" in p]
    assert later and all("- What is the" in p for p in later)


def test_kept_answers_reach_more_rows_than_the_first_questions(finished: dict[str, Any]) -> None:
    for name in ("PMC4840965_004_00.png", "PMC3826085_003_00.png"):
        result = finished["results"][name]
        grounding = ground(EXAMPLES[name]["html"])
        assert grounding is not None
        kept = [Location(*loc) for loc in result["locations"]]
        # The responder proposes in row order: the verified pool is its first questions.
        pool = table_pairs(EXAMPLES[name]["html"])[: result["verified"]]
        located = [locate_answer(grounding, p["answer"], p["question"]) for p in pool]
        shape = (grounding.n_rows, grounding.n_cols)
        diverse, naive = coverage(kept, *shape), coverage(located[: len(kept)], *shape)
        reachable = coverage(located, *shape)
        assert result["coverage"]["rows"] == diverse.rows
        assert len(kept) == SETTINGS.per_image < len(pool)
        assert diverse.rows == min(reachable.rows, len(kept)) > naive.rows
        assert diverse.cols == reachable.cols >= naive.cols
        for location, pair in zip(kept, result["qa_pairs"], strict=True):
            assert grounding.grid[location.row][location.col].strip() == pair["answer"]


def test_the_dataset_is_valid_training_data(finished: dict[str, Any]) -> None:
    report = validate_jsonl(finished["dataset"])
    assert report.ok, [str(p) for p in report.problems]
    assert report.good_rows == finished["rows"] == 3
    assert len(finished["used"]) == 4


def test_a_rerun_skips_finished_images_and_new_settings_redo_them(tmp_path: Path) -> None:
    records = _records()[:2]
    responder = QAResponder(TABLES)
    with (
        vlm_stub(responder, images=PATHS) as stub,
        ResultStore(tmp_path / "progress.jsonl") as store,
    ):
        first, keys = _run(stub, store, records)
        calls = stub.stats()["calls"]
        again, same_keys = _run(stub, store, records)
        assert (first.done, again.done, again.skipped) == (2, 0, 2)
        assert sorted(same_keys) == sorted(keys)
        assert stub.stats()["calls"] == calls
        other, other_keys = _run(stub, store, records, QASettings(per_image=4, rounds=1))
        assert other.done == 2 and set(other_keys).isdisjoint(keys)
        assert len(list(store.records())) == 4


def test_failed_calls_leave_the_image_for_the_next_run(tmp_path: Path) -> None:
    records = _records()[:1]
    with (
        vlm_stub(QAResponder(TABLES), images=PATHS) as stub,
        ResultStore(tmp_path / "p.jsonl") as store,
    ):
        stub.configure(failure="500")
        failed, _ = _run(stub, store, records, max_retries=0)
        assert failed.done == 0 and len(failed.failed) == 1
        assert "500" in (failed.failed[0].error or "")
        assert len(store) == 0
        stub.configure(failure="none")
        retried, _ = _run(stub, store, records, max_retries=0)
        assert retried.done == 1 and len(store) == 1


def test_a_failed_verification_fails_its_image_as_a_whole(tmp_path: Path) -> None:
    records = _records()[:2]
    doomed = records[0]["image_key"]
    answer = QAResponder(TABLES)

    def responder(request: StubRequest) -> str:
        if doomed in request.image_keys and question_in(request.prompt) is not None:
            raise StubBadRequest("no verification today")
        return answer(request)

    with vlm_stub(responder, images=PATHS) as stub, ResultStore(tmp_path / "p.jsonl") as store:
        summary, keys = _run(stub, store, records)
        assert summary.done == 1 and [f.name for f in summary.failed] == [records[0]["image"]]
        assert "no verification today" in (summary.failed[0].error or "")
        assert [r["image"] for r in store.records()] == [records[1]["image"]]
        assert len(keys) == 2


def test_calls_run_concurrently_up_to_the_endpoint_limit(tmp_path: Path) -> None:
    records = _records()[:2]
    with (
        vlm_stub(QAResponder(TABLES), images=PATHS, latency=0.02) as stub,
        ResultStore(tmp_path / "p") as s,
    ):
        _run(stub, s, records, max_concurrency_per_endpoint=3)
        # Two clients (generator, verifier) on one endpoint, three calls each at most.
        assert 3 < stub.stats()["max_in_flight"] <= 6


def test_the_work_key_changes_with_whatever_changes_the_questions() -> None:
    small = VLMClient("http://127.0.0.1:9", model="m", max_pixels=300_000)
    large = VLMClient("http://127.0.0.1:9", model="m")
    base = qa_key("img", ["<fcel>a<nl>"], large, large, ("g", "v"), SETTINGS)
    new_checkpoint = {"model": "g", "cards": [{"root": "/ckpt/2"}]}
    assert base != qa_key("img", ["<fcel>a<nl>"], large, large, (new_checkpoint, "v"), SETTINGS)
    assert base == qa_key("img", ["<fcel>a<nl>"], large, large, ("g", "v"), SETTINGS)
    others = {
        qa_key("img2", ["<fcel>a<nl>"], large, large, ("g", "v"), SETTINGS),
        qa_key("img", ["<fcel>b<nl>"], large, large, ("g", "v"), SETTINGS),
        qa_key("img", ["<fcel>a<nl>"], large, small, ("g", "v"), SETTINGS),
        qa_key("img", ["<fcel>a<nl>"], large, large, ("g", "w"), SETTINGS),
        qa_key("img", ["<fcel>a<nl>"], large, large, ("g", "v"), QASettings(seed=1)),
    }
    assert base not in others and len(others) == 5


def test_every_rejected_question_is_kept_with_the_verifiers_answers(
    finished: dict[str, Any],
) -> None:
    lines = finished["rejected"].read_text(encoding="utf-8").splitlines()
    rejected = [json.loads(line) for line in lines]
    by_reason = Counter(entry["reason"] for entry in rejected)
    assert by_reason == finished["drops"]  # one line per drop, every reason
    wrong = next(e for e in rejected if e["reason"] == "wrong")
    assert wrong["with_image_f1"] < 0.8 and "with_image" in wrong and "without_image" in wrong
    blind = next(e for e in rejected if e["reason"] == "blind_answerable")
    assert blind["question"] == "What is the capital of France?"
    assert blind["without_image"] == "<answer>Paris</answer>" and blind["without_image_f1"] == 1.0
    assert next(e for e in rejected if e["reason"] == "bad_json")["reply"].startswith("I am")
    assert all(e["image"] and e["image_key"] for e in rejected)


def test_generator_replies_survive_a_verifier_outage(tmp_path: Path) -> None:
    records = _records()[:1]
    key = records[0]["image_key"]
    answer = QAResponder(TABLES)
    down = {"verifier": True}

    def responder(request: StubRequest) -> str:
        if down["verifier"] and question_in(request.prompt) is not None:
            raise StubBadRequest("verifier down")
        return answer(request)

    with (
        vlm_stub(responder, images=PATHS) as stub,
        ResultStore(tmp_path / "p.jsonl") as store,
        ResultStore(tmp_path / "replies.jsonl") as replies,
    ):
        failed, _ = _run(stub, store, records, options={"replies": replies}, max_retries=0)
        assert len(failed.failed) == 1 and len(replies) == 1
        assert answer.generation_calls[key] == 1
        down["verifier"] = False
        done, _ = _run(stub, store, records, options={"replies": replies}, max_retries=0)
        assert done.done == 1
        rounds = next(store.records())["rounds"]
    assert answer.generation_calls[key] == 1 + (rounds - 1)  # round 1 was not asked again
