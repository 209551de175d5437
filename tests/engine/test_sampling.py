"""`sample_images` against the VLM stub (which fills unset sampling fields greedily, as vLLM)."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.support.vlm_stub import vlm_stub

from trivia.engine.consistency import consistency
from trivia.engine.images import image_key
from trivia.engine.runner import EXIT_FAILED, EXIT_UNREADABLE
from trivia.engine.sampling import SampleSettings, sample_images, sample_key
from trivia.engine.sampling_params import SamplingParams
from trivia.engine.sanity import sanity_report
from trivia.engine.store import ResultStore
from trivia.engine.vlm import VLMClient

LIMITS = {"min_pixels": 784, "max_pixels": 100 * 28 * 28}
FIELDS = {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_tokens"}


def _run(url, images, store, settings, *, on_outcome=None, run_options=None, **client_options):
    async def go():
        async with VLMClient(url, **LIMITS, **client_options) as client:
            return await sample_images(
                client,
                images,
                store,
                settings,
                workers=4,
                on_outcome=on_outcome,
                **(run_options or {}),
            )

    return asyncio.run(go())


def test_samples_differ_on_a_server_whose_model_defaults_are_greedy(
    tmp_path, image_paths, truth_by_key
):
    settings = SampleSettings(k=4)
    with (
        vlm_stub(tables=truth_by_key, images=image_paths) as stub,
        ResultStore(tmp_path / "s.jsonl") as store,
    ):
        summary = _run(stub.url, image_paths, store, settings)
        assert summary.done == 20 and not summary.failed and summary.exit_code == 0
        assert stub.stats()["calls"] == 80
        requests = stub.requests()
        records = list(store.records())
    for request in requests:  # every field sent: none comes from the model's greedy defaults
        assert request.body.keys() >= FIELDS and request.samples
        assert (request.top_k, request.top_p, request.repetition_penalty) == (-1, 1.0, 1.0)
    assert sorted(r["image_key"] for r in records) == sorted(map(image_key, image_paths))
    scores = []
    fingerprint = records[0]["model_fingerprint"]
    assert fingerprint["model"] == "trivia-vlm-stub"
    assert fingerprint["cards"][0]["root"] == "/models/trivia-vlm-stub"
    for record in records:
        assert record["k"] == 4 and len(record["outputs"]) == 4
        assert record["sampling"] == SamplingParams().as_record()
        texts = [o["text"] for o in record["outputs"]]
        again = consistency(texts)
        assert record["consistency"] == pytest.approx(again.score, abs=1e-12)
        assert [o["valid"] for o in record["outputs"]] == [c.valid for c in again.checks]
        assert record["consensus"] == again.consensus and record["n_valid"] == again.n_valid
        assert record["key"] == sample_key(record["image_key"], fingerprint, settings, **LIMITS)
        scores.append(record["consistency"])
    assert min(scores) < 0.6 and max(scores) == 1.0  # the stub's noise varies by image
    report = sanity_report(records)
    assert report["images"] == 20 and report["identical"] < 10 and not report["warnings"]


def test_greedy_sampling_is_flagged_by_the_sanity_report(tmp_path, image_paths, truth_by_key):
    settings = SampleSettings(k=3, sampling=SamplingParams(temperature=0.0))
    with (
        vlm_stub(tables=truth_by_key, images=image_paths) as stub,
        ResultStore(tmp_path / "s.jsonl") as store,
    ):
        _run(stub.url, image_paths[:6], store, settings)
        report = sanity_report(store.records())
    assert report["identical"] == 6 and report["identical_share"] == 1.0
    assert report["consistency_histogram"]["counts"][-1] == 6
    assert report["sampling"] == [settings.sampling.as_record()]
    assert any("decoding greedily" in warning for warning in report["warnings"])


def test_truncated_outputs_are_counted_and_the_rule_effect_reported(
    tmp_path, image_paths, truth_by_key
):
    settings = SampleSettings(k=2, sampling=SamplingParams(temperature=0.0, max_tokens=40))
    with (
        vlm_stub(tables=truth_by_key, images=image_paths) as stub,
        ResultStore(tmp_path / "s.jsonl") as store,
    ):
        _run(stub.url, image_paths[:4], store, settings)
        records = list(store.records())
        report = sanity_report(records)
    reasons = {o["reason"] for r in records for o in r["outputs"]}
    assert reasons == {"truncated"}  # cut at max_tokens with finish_reason "length"
    assert {o["finish_reason"] for r in records for o in r["outputs"]} == {"length"}
    assert report["invalid"]["truncated"] == 8 and report["invalid_share"] == 1.0
    assert any("raise --max-tokens" in warning for warning in report["warnings"])


def test_a_seed_makes_samples_repeat_and_is_recorded(tmp_path, image_paths, truth_by_key):
    seeded = SampleSettings(k=3, sampling=SamplingParams(seed=7))
    outputs = []
    for name in ("a", "b"):
        with (
            vlm_stub(tables=truth_by_key, images=image_paths) as stub,
            ResultStore(tmp_path / f"{name}.jsonl") as store,
        ):
            _run(stub.url, image_paths[:8], store, seeded)
            records = sorted(store.records(), key=lambda r: r["image_key"])
            outputs.append([[o["text"] for o in r["outputs"]] for r in records])
            seeds = {r.seed for r in stub.requests()}
        assert None not in seeds and len(seeds) == 24  # one per image and sample
        assert all(len(set(r["seeds"])) == 3 for r in records)
    assert outputs[0] == outputs[1]


def test_a_rerun_skips_finished_images_and_new_settings_make_new_records(
    tmp_path, image_paths, truth_by_key
):
    images = image_paths[:5]
    with (
        vlm_stub(tables=truth_by_key, images=image_paths) as stub,
        ResultStore(tmp_path / "s.jsonl") as store,
    ):
        _run(stub.url, images[:3], store, SampleSettings(k=2))
        summary = _run(stub.url, images, store, SampleSettings(k=2))
        assert (summary.done, summary.skipped) == (2, 3)
        assert stub.stats()["calls"] == 10
        hotter = SampleSettings(k=2, sampling=SamplingParams(top_p=0.9))
        changed = _run(stub.url, images[:2], store, hotter)
        assert changed.done == 2 and len(store) == 7
        rule = _run(stub.url, images[:1], store, SampleSettings(k=2, invalid="exclude"))
        assert rule.done == 1 and len(store) == 8


def test_a_new_checkpoint_under_the_same_name_is_sampled_again(tmp_path, image_paths, truth_by_key):
    images = image_paths[:2]
    with (
        vlm_stub(tables=truth_by_key, images=image_paths) as stub,
        ResultStore(tmp_path / "s.jsonl") as store,
    ):
        _run(stub.url, images, store, SampleSettings(k=2))
        assert _run(stub.url, images, store, SampleSettings(k=2)).skipped == 2
        stub.configure(root="/models/checkpoint-200")  # same served name, new weights
        assert _run(stub.url, images, store, SampleSettings(k=2)).done == 2
        revised = _run(
            stub.url, images, store, SampleSettings(k=2), run_options={"model_revision": "r2"}
        )
        assert revised.done == 2 and len(store) == 6


def test_failed_images_get_no_record_and_are_retried_next_time(tmp_path, image_paths, truth_by_key):
    images = image_paths[:3]
    with vlm_stub(tables=truth_by_key, images=image_paths, failure="500") as stub:
        with ResultStore(tmp_path / "s.jsonl") as store:
            summary = _run(stub.url, images, store, SampleSettings(k=2), max_retries=0)
            assert summary.done == 0 and len(summary.failed) == 3 and len(store) == 0
            assert "HTTP 500" in summary.failed[0].error and summary.exit_code == EXIT_FAILED
        stub.configure(failure="none")
        with ResultStore(tmp_path / "s.jsonl") as store:
            summary = _run(stub.url, images, store, SampleSettings(k=2), max_retries=0)
            assert summary.done == 3 and len(store) == 3


def test_unreadable_files_are_recorded_once_and_skipped(tmp_path, image_paths, truth_by_key):
    broken = [tmp_path / "empty.png", tmp_path / "text.png"]
    broken[0].write_bytes(b"")
    broken[1].write_text("not an image")
    images = [*image_paths[:2], *broken]
    with vlm_stub(tables=truth_by_key, images=image_paths) as stub:
        for attempt in (1, 2):
            with (
                ResultStore(tmp_path / "s.jsonl") as store,
                ResultStore(tmp_path / "s.failed.jsonl") as unreadable,
            ):
                summary = _run(
                    stub.url, images, store, SampleSettings(k=2),
                    run_options={"unreadable": unreadable},
                )  # fmt: skip
                assert len(summary.unreadable) == 2 and summary.exit_code == EXIT_UNREADABLE
                assert len(unreadable) == 2 and not summary.failed
                if attempt == 2:
                    assert summary.skipped == 2
                    assert all("earlier run" in o.error for o in summary.unreadable)
        assert stub.stats()["calls"] == 4  # the two good images, twice each, once
    lines = (tmp_path / "s.failed.jsonl").read_text().splitlines()
    reasons = [json.loads(line)["reason"] for line in lines]
    assert all("not a readable image" in reason for reason in reasons)
    broken[0].write_bytes(image_paths[5].read_bytes())  # a replaced file is tried again
    with (
        vlm_stub(tables=truth_by_key, images=image_paths) as stub,
        ResultStore(tmp_path / "s.jsonl") as store,
        ResultStore(tmp_path / "s.failed.jsonl") as unreadable,
    ):
        summary = _run(
            stub.url, images, store, SampleSettings(k=2), run_options={"unreadable": unreadable}
        )
    assert summary.done == 1 and len(summary.unreadable) == 1


def test_a_dead_server_aborts_the_run_and_keeps_finished_work(tmp_path, image_paths, truth_by_key):
    with (
        vlm_stub(tables=truth_by_key, images=image_paths) as stub,
        ResultStore(tmp_path / "s.jsonl") as store,
    ):
        seen = []

        def outcome(result):
            seen.append(result.status)
            if len(seen) == 2:
                stub.configure(failure="down")

        summary = _run(
            stub.url, image_paths, store, SampleSettings(k=2), on_outcome=outcome,
            run_options={"abort_after": 3, "probe_every_s": 0.01, "probe_for_s": 0.05},
            max_retries=0,
        )  # fmt: skip
        assert summary.aborted and "aborted" in summary.aborted
        assert summary.exit_code == EXIT_FAILED
        assert summary.done >= 2 and len(store) == summary.done
        assert summary.done + len(summary.failed) < 20  # it stopped taking images
        calls = stub.stats()["calls"]
    assert calls < 2 * 20


def test_settings_are_checked():
    with pytest.raises(ValueError):
        SampleSettings(k=1)
    with pytest.raises(ValueError):
        SampleSettings(fmt="latex")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SampleSettings(invalid="half")  # type: ignore[arg-type]
    for bad in ({"top_p": 0.0}, {"top_k": 0}, {"temperature": -1}, {"repetition_penalty": 0}):
        with pytest.raises(ValueError):
            SamplingParams(**bad)
