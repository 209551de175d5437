"""Evaluation: the official PubTabNet sample TEDS reproduced, through the model path too."""

from __future__ import annotations

import asyncio

import pytest
from tests.support.vlm_stub import vlm_stub

from trivia.engine.evaluation import (
    Prediction,
    load_predictions,
    predict,
    score_predictions,
    score_table,
    summarise,
)
from trivia.engine.labelled import load_labelled
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
            found = asyncio.run(go(store))
        with ResultStore(tmp_path / "predictions.jsonl") as store:
            again = asyncio.run(go(store))  # resumed: nothing is asked twice
        assert stub.stats()["calls"] == 20
        assert {r.temperature for r in stub.requests()} == {0.0}
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
