"""`trivia data sample`, `trivia data select` and `trivia eval` end to end against the VLM stub.

`sample` runs as a real process so it can be killed mid-run; the others run in-process.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.vlm_stub import vlm_stub
from typer.testing import CliRunner

from trivia.cli import app
from trivia.engine.images import image_key

TRIVIA = str(Path(sys.executable).with_name("trivia"))
PIXELS = ["--max-pixels", str(64 * 28 * 28), "--min-pixels", "784"]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sample_resumes_after_a_kill_without_duplicates_or_loss(
    tmp_path, pubtabnet_dir, image_paths, truth_by_key
):
    out = tmp_path / "samples.jsonl"
    with vlm_stub(tables=truth_by_key, images=image_paths, latency=0.08) as stub:
        command = [
            TRIVIA, "data", "sample", "--vlm-url", stub.url,
            "--images", str(pubtabnet_dir / "images"), "--out", str(out),
            "--k", "2", "--concurrency", "1", *PIXELS,
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 60
            while len(_lines(out)) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.returncode == -signal.SIGKILL
        before = _lines(out)
        assert 3 <= len(before) < 20
        calls_before = stub.stats()["calls"]

        stub.configure(latency_s=0.0)
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert f"{len(before)} already in" in rerun.stderr or "already in" in rerun.stderr
        calls_after = stub.stats()["calls"] - calls_before
    after = _lines(out)
    assert after[: len(before)] == before  # nothing written before the kill was lost or changed
    records = [json.loads(line) for line in after]
    assert len(records) == 20 and len({r["key"] for r in records}) == 20
    assert {r["image_key"] for r in records} == {image_key(p) for p in image_paths}
    assert calls_after <= 2 * (20 - len(before)) + 2  # at most the image in flight is redone
    assert all(len(r["outputs"]) == 2 and 0.0 <= r["consistency"] <= 1.0 for r in records)


def _write_samples(path: Path, values: list[float]) -> None:
    rows = [
        {"key": f"k{i}", "image": f"/x/{i}.png", "consistency": v} for i, v in enumerate(values)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_select_writes_the_selection_and_prints_histograms_and_counts(tmp_path):
    samples, out = tmp_path / "samples.jsonl", tmp_path / "selected.jsonl"
    _write_samples(samples, [0.1, 0.2, 0.45, 0.46, 0.55, 0.65, 0.75, 0.85, 0.95, 1.0, 1.0, 1.0])
    runner = CliRunner()
    result = runner.invoke(
        app, ["data", "select", str(samples), "--n", "6", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "12 images: 2 below 0.4, 0 above 1, 10 in range; 6 selected" in result.output
    assert "per bin (taken/available)" in result.output and "consistency" in result.output
    chosen = [json.loads(line) for line in _lines(out)]
    assert len(chosen) == 6 and all(r["consistency"] >= 0.4 for r in chosen)

    band = runner.invoke(
        app,
        ["data", "select", str(samples), "--strategy", "band", "--n", "9", "--out", str(out)],
    )
    assert band.exit_code == 0, band.output
    assert "12 images: 4 below 0.5, 4 above 0.9, 4 in range; 4 selected" in band.output
    assert sorted(json.loads(line)["consistency"] for line in _lines(out)) == [
        0.55,
        0.65,
        0.75,
        0.85,
    ]


def test_select_keeps_one_record_per_image_the_latest(tmp_path):
    samples, out = tmp_path / "samples.jsonl", tmp_path / "selected.jsonl"
    first_run = [
        {"key": f"k{i}", "image": f"/x/{i}.png", "image_key": f"h{i}", "consistency": 0.5}
        for i in range(5)
    ]
    second_run = [r | {"key": r["key"] + "-k8", "consistency": 0.9} for r in first_run[:3]]
    samples.write_text("".join(json.dumps(r) + "\n" for r in first_run + second_run))
    result = CliRunner().invoke(
        app, ["data", "select", str(samples), "--n", "100", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    chosen = [json.loads(line) for line in _lines(out)]
    assert sorted(r["image_key"] for r in chosen) == ["h0", "h1", "h2", "h3", "h4"]
    assert {r["key"] for r in chosen} == {"k0-k8", "k1-k8", "k2-k8", "k3", "k4"}
    assert "3 earlier records of an image were superseded" in result.output


def test_select_refuses_files_that_are_not_samples(tmp_path):
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"messages": []}\n')
    result = CliRunner().invoke(
        app, ["data", "select", str(bad), "--n", "1", "--out", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 1 and "rows.jsonl:1" in result.output


def test_eval_with_the_model_reproduces_the_official_sample_teds(
    tmp_path, sample_dataset, official
):
    _, _, expected = official
    dataset, responder, paths = sample_dataset
    report = tmp_path / "report"
    with vlm_stub(responder, images=paths, latency=0.01) as stub:
        args = ["eval", "--vlm-url", stub.url, "--dataset", str(dataset), "--out", str(report)]
        result = CliRunner().invoke(app, [*args, "--format", "html", *PIXELS])
        assert result.exit_code == 0, result.output
        again = CliRunner().invoke(app, [*args, "--format", "html", *PIXELS])
        assert again.exit_code == 0 and stub.stats()["calls"] == 20  # resumed, not re-asked
    with open(report / "per_table.csv", newline="") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert {name: float(row["teds"]) for name, row in rows.items()} == expected
    assert all(float(row["seconds"]) >= 0.01 for row in rows.values())
    summary = json.loads((report / "summary.json").read_text())
    assert abs(summary["means"]["teds"] - sum(expected.values()) / 20) < 1e-12
    assert summary["means"]["teds_norm"] is not None and len(summary["slowest"]) == 10
    page = (report / "index.html").read_text()
    assert min(expected, key=expected.get) in page and "Ground truth" in page
    assert (report / "predictions.jsonl").exists()


def test_eval_of_a_predictions_file_without_a_model(tmp_path, pubtabnet_dir, official):
    _, _, expected = official
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--dataset", str(pubtabnet_dir / "sample_gt.json"),
            "--predictions", str(pubtabnet_dir / "sample_pred.json"),
            "--normalize", "none",
            "--out", str(tmp_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert abs(summary["means"]["teds"] - sum(expected.values()) / 20) < 1e-12
    assert summary["means"]["teds_norm"] is None and summary["slowest"] == []
    assert [w["name"] for w in summary["worst"]][:3] == sorted(expected, key=expected.get)[:3]


def test_eval_needs_exactly_one_source_of_predictions(tmp_path, pubtabnet_dir):
    dataset = ["--dataset", str(pubtabnet_dir / "sample_gt.json"), "--out", str(tmp_path)]
    neither = CliRunner().invoke(app, ["eval", *dataset])
    assert neither.exit_code == 2 and "--vlm-url or --predictions" in neither.output


def test_sample_writes_a_sanity_report_and_exits_3_for_unreadable_images(
    tmp_path, image_paths, truth_by_key
):
    folder = tmp_path / "images"
    folder.mkdir()
    for path in image_paths[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "corrupt.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "samples.jsonl"
    with vlm_stub(tables=truth_by_key, images=image_paths) as stub:
        args = [
            "data", "sample", "--vlm-url", stub.url, "--images", str(folder),
            "--out", str(out), "--k", "3", "--temperature", "0", *PIXELS,
        ]  # fmt: skip
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "WARNING" in result.output and "decoding greedily" in result.output
    report = json.loads((tmp_path / "samples.sanity.json").read_text())
    assert report["images"] == 3 and report["identical"] == 3
    assert report["sampling"][0]["temperature"] == 0.0 and report["sampling"][0]["top_k"] == -1
    failed = [json.loads(line) for line in (tmp_path / "samples.failed.jsonl").open()]
    assert [Path(f["name"]).name for f in failed] == ["corrupt.png"]
