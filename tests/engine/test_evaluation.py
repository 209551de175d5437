"""Evaluation: the official PubTabNet sample TEDS reproduced, through the model path too."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.support.vlm_stub import vlm_stub

from trivia.engine.evaluation import (
    SCORER_VERSION,
    Prediction,
    load_predictions,
    score_predictions,
    score_table,
    summarise,
)
from trivia.engine.labelled import LabelledTable, load_labelled
from trivia.engine.prediction import predict
from trivia.engine.store import ResultStore
from trivia.engine.vlm import VLMClient

LIMITS = {"min_pixels": 784, "max_pixels": 64 * 28 * 28}


def test_scoring_the_sample_predictions_gives_the_official_teds(pubtabnet_dir, official):
    _, _, expected = official
    tables = load_labelled(pubtabnet_dir / "sample_gt.json")
    scores = score_predictions(tables, load_predictions(pubtabnet_dir / "sample_pred.json"))
    assert {s.name: s.teds for s in scores} == expected  # exactly, to the last bit
    summary = summarise(scores)
    assert summary.means["teds"] == pytest.approx(sum(expected.values()) / 20, abs=1e-15)
    assert summary.worst[0].name == min(expected, key=expected.get)
    assert summary.slowest == []  # predictions from a file have no call times


def test_the_model_path_reproduces_the_official_teds(tmp_path, sample_dataset, official):
    _, _, expected = official
    dataset, responder, paths = sample_dataset
    tables = load_labelled(dataset)
    with vlm_stub(responder, images=paths) as stub:

        async def go(store):
            async with VLMClient(stub.url, **LIMITS) as client:
                return await predict(client, tables, store, fmt="html", workers=4)

        with ResultStore(tmp_path / "predictions.jsonl") as store:
            found, run = asyncio.run(go(store))
        with ResultStore(tmp_path / "predictions.jsonl") as store:
            again, rerun = asyncio.run(go(store))  # resumed: nothing is asked twice
        assert stub.stats()["calls"] == 20 and (run.done, rerun.skipped) == (20, 20)
        assert {(r.temperature, r.top_k, r.top_p) for r in stub.requests()} == {(0.0, -1, 1.0)}
    assert {name: p.text for name, p in again.items()} == {
        name: p.text for name, p in found.items()
    }
    scores = score_predictions(tables, found)
    assert {s.name: s.teds for s in scores} == expected
    assert all(s.seconds is not None for s in scores)
    assert len(summarise(scores, top=5).slowest) == 5


def test_normalisation_and_structure_scores():
    truth = (
        "<table><thead><tr><th>A</th><th>B</th></tr></thead><tr><td>1</td><td>2</td></tr></table>"
    )
    pred = "<fcel>A<fcel>B<nl>\n<fcel>1<fcel>3<nl>\n"
    scores = score_table(pred, truth)
    assert scores["teds_norm"] is not None and scores["teds_norm"] > scores["teds"]
    assert scores["teds_s_norm"] == 1.0  # same grid once <th>/<thead> are normalised away
    assert scores["teds_s"] <= scores["teds_s_norm"]
    raw_only = score_table(pred, truth, normalize=False)
    assert raw_only["teds_norm"] is None and raw_only["teds"] == scores["teds"]


def test_missing_and_invalid_predictions(pubtabnet_dir):
    tables = load_labelled(pubtabnet_dir / "sample_gt.json")[:3]
    name = tables[1].name
    predictions = {name: Prediction("<fcel>cut", "length", 1.5)}
    scores = score_predictions(tables, predictions)
    assert scores[0].teds == 0.0 and scores[0].error == "no prediction"
    assert not scores[1].valid and scores[1].reason == "truncated" and scores[1].seconds == 1.5
    summary = summarise(scores)
    assert summary.valid == 0 and summary.scored == 3


def _grid(rows: int, cols: int, text: str = "x") -> str:
    row = "<tr>" + f"<td>{text}</td>" * cols + "</tr>"
    return "<table>" + row * rows + "</table>"


def test_an_oversized_prediction_scores_zero_and_counts():
    small = _grid(2, 2)
    tables = [LabelledTable(name, None, small) for name in ("a", "b", "runaway")]
    predictions = {"a": small, "b": _grid(2, 3), "runaway": _grid(1200, 5)}  # 6,000 cells
    scores = score_predictions(tables, predictions)
    runaway = scores[2]
    assert runaway.teds == 0.0 and runaway.teds_norm == 0.0 and not runaway.excluded
    assert "prediction too large, scored 0" in runaway.error
    summary = summarise(scores)
    assert summary.scored == 3 and summary.excluded == []
    assert summary.means["teds"] == pytest.approx((1.0 + scores[1].teds + 0.0) / 3)


def test_only_an_oversized_ground_truth_is_excluded_and_reported():
    huge = _grid(1200, 5)
    tables = [LabelledTable("ok", None, _grid(2, 2)), LabelledTable("huge", None, huge)]
    scores = score_predictions(tables, {"ok": _grid(2, 2), "huge": _grid(2, 2)})
    assert scores[1].excluded and scores[1].teds is None
    assert "ground truth too large, excluded" in scores[1].error
    summary = summarise(scores)
    assert summary.scored == 1 and summary.excluded == ["huge"] and summary.means["teds"] == 1.0
    assert summary.as_dict()["excluded"] == ["huge"]


def test_scoring_in_processes_matches_and_pairs_are_cached(tmp_path, pubtabnet_dir, official):
    _, _, expected = official
    tables = load_labelled(pubtabnet_dir / "sample_gt.json")
    predictions = load_predictions(pubtabnet_dir / "sample_pred.json")
    seen: list[int] = []
    with ResultStore(tmp_path / "cache.jsonl") as cache:
        scores = score_predictions(
            tables, predictions, processes=2, cache=cache, on_scored=seen.append
        )
        assert len(cache) == 20
    assert {s.name: s.teds for s in scores} == expected and sum(seen) == 20
    # A cached pair is not scored again: plant a value and read it back.
    first = tables[0]
    with ResultStore(tmp_path / "cache.jsonl") as cache:
        key = cache_key = None
        from trivia.engine.store import work_key

        key = work_key("teds", SCORER_VERSION, True, predictions[first.name], first.html)
        planted = {"key": key + "x", "scores": {}}  # the store refuses a second record per key
        cache.write(planted)
        cache_key = key
        assert cache.get(cache_key)["scores"]["teds"] == expected[first.name]
        again = score_predictions(tables, predictions, cache=cache)
        assert len(cache) == 21  # nothing new was scored
    assert {s.name: s.teds for s in again} == expected


def test_a_split_keeps_only_its_pubtabnet_records(tmp_path, pubtabnet_dir):
    lines = (pubtabnet_dir / "examples.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines[:6]]
    for i, record in enumerate(records):
        record["split"] = "val" if i % 3 == 0 else "train"
    mixed = tmp_path / "PubTabNet_2.0.0.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in records))
    val = load_labelled(mixed, images_dir=pubtabnet_dir / "images", split="val")
    assert [t.name for t in val] == [records[0]["filename"], records[3]["filename"]]
    assert len(load_labelled(mixed, images_dir=pubtabnet_dir / "images")) == 6
    with pytest.raises(ValueError, match="no PubTabNet record of split 'test'"):
        load_labelled(mixed, split="test")
