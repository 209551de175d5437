"""`sample_images` against the VLM stub with the shipped PubTabNet images."""

from __future__ import annotations

import asyncio

import pytest

from trivia.engine.consistency import consistency
from trivia.engine.images import image_key
from trivia.engine.sampling import SampleSettings, sample_images, sample_key
from trivia.engine.store import ResultStore
from trivia.engine.vlm import VLMClient
from trivia.testing.vlm_stub import vlm_stub

LIMITS = {"min_pixels": 784, "max_pixels": 100 * 28 * 28}


def _run(url, images, store, settings, **client_options):
    async def go():
        async with VLMClient(url, **LIMITS, **client_options) as client:
            return await sample_images(client, images, store, settings, workers=4)

    return asyncio.run(go())


def test_records_hold_k_outputs_their_validity_and_consistency(tmp_path, image_paths, truth_by_key):
    settings = SampleSettings(k=4, temperature=1.0)
    with vlm_stub(tables=truth_by_key) as stub, ResultStore(tmp_path / "s.jsonl") as store:
        summary = _run(stub.url, image_paths, store, settings)
        assert summary.done == 20 and not summary.failed
        assert stub.stats()["calls"] == 80
        records = list(store.records())
    assert sorted(r["image_key"] for r in records) == sorted(map(image_key, image_paths))
    scores = []
    for record in records:
        assert record["k"] == 4 and len(record["outputs"]) == 4
        texts = [o["text"] for o in record["outputs"]]
        again = consistency(texts)
        assert record["consistency"] == pytest.approx(again.score, abs=1e-12)
        assert [o["valid"] for o in record["outputs"]] == [c.valid for c in again.checks]
        assert record["consensus"] == again.consensus and record["n_valid"] == again.n_valid
        assert record["key"] == sample_key(
            record["image_key"], "trivia-vlm-stub", settings, **LIMITS
        )
        scores.append(record["consistency"])
    assert min(scores) < 0.6 and max(scores) == 1.0  # the stub's noise varies by image


def test_a_rerun_skips_finished_images_and_new_settings_make_new_records(
    tmp_path, image_paths, truth_by_key
):
    images = image_paths[:5]
    with vlm_stub(tables=truth_by_key) as stub, ResultStore(tmp_path / "s.jsonl") as store:
        _run(stub.url, images[:3], store, SampleSettings(k=2))
        summary = _run(stub.url, images, store, SampleSettings(k=2))
        assert (summary.done, summary.skipped) == (2, 3)
        assert stub.stats()["calls"] == 10
        changed = _run(stub.url, images[:2], store, SampleSettings(k=2, temperature=0.5))
        assert changed.done == 2 and len(store) == 7


def test_failed_images_get_no_record_and_are_retried_next_time(tmp_path, image_paths, truth_by_key):
    images = image_paths[:3]
    with vlm_stub(tables=truth_by_key, failure="500") as stub:
        with ResultStore(tmp_path / "s.jsonl") as store:
            summary = _run(stub.url, images, store, SampleSettings(k=2), max_retries=0)
            assert summary.done == 0 and len(summary.failed) == 3 and len(store) == 0
            assert "HTTP 500" in summary.failed[0].error
        stub.configure(failure="none")
        with ResultStore(tmp_path / "s.jsonl") as store:
            summary = _run(stub.url, images, store, SampleSettings(k=2), max_retries=0)
            assert summary.done == 3 and len(store) == 3


def test_settings_are_checked():
    with pytest.raises(ValueError):
        SampleSettings(k=1)
    with pytest.raises(ValueError):
        SampleSettings(fmt="latex")  # type: ignore[arg-type]
