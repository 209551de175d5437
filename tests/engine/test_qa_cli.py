"""`trivia data qa` end to end: the report, the summary file, and resuming after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.qa_responder import QAResponder, load_examples, sample_record
from tests.support.vlm_stub import vlm_stub
from typer.testing import CliRunner

from trivia.cli import app
from trivia.cli.engine_qa import companion_paths
from trivia.dataset import validate_jsonl
from trivia.engine.qa_candidate import DROP_REASONS

TRIVIA = Path(sys.executable).with_name("trivia")
NAMES = {
    "PMC4840965_004_00.png",
    "PMC3826085_003_00.png",
    "PMC4776821_005_00.png",
    "PMC4682394_003_00.png",
    "PMC3519711_003_00.png",
    "PMC5134617_013_00.png",
}
EXAMPLES = load_examples(NAMES)
TABLES = {example["key"]: example["html"] for example in EXAMPLES.values()}
PATHS = [example["path"] for example in EXAMPLES.values()]
runner = CliRunner()


def _selected(folder: Path) -> Path:
    path = folder / "selected.jsonl"
    records = [sample_record(EXAMPLES[name]) for name in sorted(NAMES)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _args(url: str, selected: Path, out: Path, *extra: str) -> list[str]:
    return [
        "data", "qa",
        "--generator-url", url, "--verifier-url", url,
        "--in", str(selected), "--out", str(out),
        "--per-image", "6", "--rounds", "2", "--candidates-per-round", "8",
        *extra,
    ]  # fmt: skip


def _rows(path: Path) -> dict[str, list[dict[str, str]]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    by_image = {Path(row["images"][0]).name: row["qa_pairs"] for row in rows}
    assert len(by_image) == len(rows), "an image appears twice"
    return by_image


def test_the_command_writes_valid_rows_a_report_and_a_summary(tmp_path: Path) -> None:
    selected, out = _selected(tmp_path), tmp_path / "dataset.jsonl"
    with vlm_stub(QAResponder(TABLES), images=PATHS) as stub:
        result = runner.invoke(app, _args(stub.url, selected, out))
        assert result.exit_code == 0, result.output
        again = runner.invoke(app, _args(stub.url, selected, out))
    assert again.exit_code == 0, again.output
    report = validate_jsonl(out)
    assert report.ok and report.good_rows == len(NAMES)
    assert "dropped questions" in result.stdout and "blind_answerable" in result.stdout
    assert f"{len(NAMES)} images ({len(NAMES)} done now, 0 earlier" in result.stdout
    assert f"{len(NAMES)} images (0 done now, {len(NAMES)} earlier" in again.stdout
    progress, summary_path = companion_paths(out)
    assert progress == tmp_path / "dataset.progress.jsonl"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["rows"] == len(NAMES)
    assert summary["models"]["generator"]["model"] == "trivia-vlm-stub"
    rejected = (tmp_path / "dataset.rejected.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rejected) == sum(summary["drops"].values())
    assert set(summary["drops"]) <= set(DROP_REASONS)
    assert {"blind_answerable", "wrong", "duplicate", "arithmetic"} <= set(summary["drops"])
    kept = {Path(entry["image"]).name: entry["kept"] for entry in summary["per_image"]}
    assert kept == {name: len(pairs) for name, pairs in _rows(out).items()}
    assert summary["kept"] == sum(kept.values()) == sum(len(p) for p in _rows(out).values())
    assert summary["candidates"] == summary["kept"] + sum(
        n for reason, n in summary["drops"].items() if reason != "bad_json"
    )


def test_an_unusable_url_is_a_usage_error(tmp_path: Path) -> None:
    selected = _selected(tmp_path)
    result = runner.invoke(app, _args("ftp://x", selected, tmp_path / "d.jsonl"))
    assert result.exit_code == 2
    assert "--generator-url" in result.output


def test_a_killed_run_resumes_without_losing_or_repeating_work(tmp_path: Path) -> None:
    selected = _selected(tmp_path)
    reference_out, out = tmp_path / "reference" / "dataset.jsonl", tmp_path / "dataset.jsonl"
    reference = QAResponder(TABLES)
    with vlm_stub(reference, images=PATHS) as stub:
        assert runner.invoke(app, _args(stub.url, selected, reference_out)).exit_code == 0
    responder = QAResponder(TABLES)
    progress, _ = companion_paths(out)
    with vlm_stub(responder, images=PATHS, latency=0.01) as stub:
        args = _args(stub.url, selected, out, "--workers", "1", "--concurrency", "4")
        process = subprocess.Popen(
            [str(TRIVIA), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                if progress.exists() and progress.read_bytes().count(b"\n") >= 2:
                    break
                time.sleep(0.01)
            assert process.poll() is None, "the run ended before it could be killed"
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
        whole_lines = progress.read_text(encoding="utf-8").split("\n")[:-1]  # not a torn last one
        finished_before = [json.loads(line) for line in whole_lines]
        assert 2 <= len(finished_before) < len(NAMES)
        assert not out.exists()
        calls_before = dict(responder.generation_calls)
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{len(finished_before)} earlier" in result.stdout
    # Nothing lost or duplicated: the same rows as a run that was never interrupted.
    assert _rows(out) == _rows(reference_out)
    assert len(progress.read_text().splitlines()) == len(NAMES)
    # Images finished before the kill were not asked about again.
    for record in finished_before:
        assert responder.generation_calls[record["image_key"]] == calls_before[record["image_key"]]
        assert calls_before[record["image_key"]] == record["rounds"]


def test_duplicate_images_are_refused_naming_both_lines(tmp_path: Path) -> None:
    selected = _selected(tmp_path)
    lines = selected.read_text(encoding="utf-8").splitlines()
    again = json.loads(lines[1]) | {"key": "a second sample run"}
    selected.write_text("\n".join([*lines, json.dumps(again)]) + "\n", encoding="utf-8")
    out = tmp_path / "d.jsonl"
    with vlm_stub(QAResponder(TABLES), images=PATHS) as stub:
        result = runner.invoke(app, _args(stub.url, selected, out))
        assert stub.stats()["calls"] == 0
    assert result.exit_code == 1
    assert f"{selected}:{len(lines) + 1}: the same image as line 2" in result.output
    assert not out.exists()
