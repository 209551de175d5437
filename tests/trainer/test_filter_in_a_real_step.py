"""Real CPU GRPO steps with the bad cases: truncated, malformed, QA-failing, no-signal completions.

The tiny random Qwen2.5-VL, the real reward stack (valkey, workers, gateway) and `swift rlhf`
run for real; only what the policy sampled is scripted (tests/support/scripted_trainer.py), so
each row of the batch is a known case. The QA model is the OpenAI stub answering by table lookup,
failing (HTTP 400) for any table that contains the cell FAILQA.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("swift", reason="needs the train extra (torch, ms-swift)")

from tests.support.openai_stub import StubBadRequest
from tests.support.reward_stack import stack_on_stub

from trivia.engine.prompts import OTSL_PROMPT
from trivia.qa.lookup import answer_messages
from trivia.trainer.demo import swift_command
from trivia.trainer.launch import PLUGIN_FILE, plan_launch
from trivia.trainer.metrics import (
    FAILED,
    GROUPS_SKIPPED,
    MALFORMED,
    NO_SIGNAL,
    TRUNCATED,
    VALID_RATE,
)
from trivia.trainer.tiny_model import build_tiny_qwen2_5_vl

REPO = Path(__file__).resolve().parents[2]
SCRIPTED_PLUGIN = REPO / "tests" / "support" / "scripted_trainer.py"

RIGHT = "<fcel>Group<fcel>Weight<nl>\n<fcel>Control<fcel>72<nl>\n<fcel>Treated<fcel>68<nl>\n"
ONE_WRONG = RIGHT.replace("68", "86")  # QA-F1 0.5
FAILQA = RIGHT.replace("Group", "FAILQA")  # the QA service fails on this table
CUT_AT_ROW = "<fcel>Group<fcel>Weight<nl>\n<fcel>Control<fcel>72<nl>\n"  # ends with the tail
CUT_MID_ROW = RIGHT[:40]  # stopped inside a row
QA = [
    {"question": "What is the Weight of Control?", "answer": "72"},
    {"question": "What is the Weight of Treated?", "answer": "68"},
]
STOP, LENGTH = "stop", "length"
BAD_STEP = {
    "good": [[RIGHT, STOP], [ONE_WRONG, STOP], [CUT_AT_ROW, LENGTH], [CUT_MID_ROW, STOP]],
    "qafail": [[RIGHT, STOP], [FAILQA, STOP], [ONE_WRONG, STOP], [FAILQA, STOP]],
    "invalid": [[CUT_MID_ROW, STOP], [CUT_AT_ROW, LENGTH], [CUT_MID_ROW, STOP], ["", STOP]],
    "nosignal": [[RIGHT, STOP]] * 4,
}
GOOD_STEP = {**BAD_STEP, "qafail": [[RIGHT, STOP], [ONE_WRONG, STOP]] * 2}
# Failures above the threshold in steps 1, 3 and 4; patience 2 stops the run at step 4 only.
SCRIPT = {"steps": [BAD_STEP, GOOD_STEP, BAD_STEP, BAD_STEP]}


def _responder(request: dict, n: int) -> str:
    if any("FAILQA" in str(m.get("content")) for m in request["messages"]):
        raise StubBadRequest("this table cannot be answered")
    return answer_messages(request["messages"])


def _dataset(path: Path) -> Path:
    from PIL import Image

    image = path / "table.png"
    Image.new("RGB", (64, 64), "white").save(image)
    rows = [
        {
            "messages": [
                {"role": "user", "content": OTSL_PROMPT},
                {"role": "assistant", "content": "<table></table>"},
            ],
            "images": [str(image)],
            "qa_pairs": [] if case == "nosignal" else QA,
            "case": case,
        }
        for case in BAD_STEP
    ]
    data = path / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return data


def _swift_options(model: Path, data: Path, out: Path) -> dict:
    return {
        "rlhf_type": "grpo", "model": str(model), "model_type": "qwen2_5_vl",
        "template": "qwen2_5_vl", "check_model": False, "tuner_type": "full",
        "torch_dtype": "float32", "dataset": str(data), "split_dataset_ratio": 0,
        "reward_funcs": ["QA_F1_score"], "use_vllm": False, "num_generations": 4,
        "loss_type": "bnpo", "per_device_train_batch_size": 16, "learning_rate": 1e-4,
        "max_completion_length": 4, "max_steps": 5, "logging_steps": 1, "save_strategy": "no",
        "eval_strategy": "no", "dataloader_num_workers": 0, "dataset_num_proc": 1,
        "report_to": "none", "add_version": False, "output_dir": str(out), "seed": 1,
    }  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run of the script; its return code, swift's log, logged steps and batch dumps."""
    root = tmp_path_factory.mktemp("filter-run")
    model = build_tiny_qwen2_5_vl(root / "model")
    data = _dataset(root)
    out = root / "swift"
    plan = plan_launch({"swift": _swift_options(model, data, out)}, swift=swift_command())
    argv = [str(SCRIPTED_PLUGIN) if a == str(PLUGIN_FILE) else a for a in plan.argv]
    dump = root / "batches.jsonl"
    with stack_on_stub(
        root / "stack", env={"TRIVIA_QA_MAX_RETRIES": "0"}, responder=_responder
    ) as (_, stack):
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": "",
            "HF_HUB_OFFLINE": "1",
            "MAX_PIXELS": "12544",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
            "TRIVIA_REWARD_URL": stack.gateway_url,
            "TRIVIA_REWARD_TIMEOUT_S": "60",
            "TRIVIA_FAILURE_PATIENCE": "2",
            "TRIVIA_MAX_NO_QUESTION_SHARE": "0.5",
            "TRIVIA_TEST_SCRIPT": json.dumps(SCRIPT),
            "TRIVIA_TEST_DUMP": str(dump),
        }
        for name in list(env):
            if name.startswith("TRIVIA_REJECTION_"):
                del env[name]  # the default filter, as a run without options gets it
        result = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=600, cwd=root
        )
    log = result.stdout + result.stderr
    jsonl = out / "logging.jsonl"
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
    steps = [row for row in rows if "reward" in row]  # the last row is swift's run summary
    batches = [json.loads(line) for line in dump.read_text().splitlines()] if dump.exists() else []
    return {"code": result.returncode, "log": log, "steps": steps, "batches": batches}


def _rows(batch: dict, case: str) -> list[dict]:
    return sorted((r for r in batch["rows"] if r["case"] == case), key=lambda r: r["k"])


def test_the_filter_is_on_by_default_and_says_so(run):
    assert "filter ON (tag_tail): tail from each prompt's format" in run["log"], run["log"][-3000:]


def test_excluded_rows_have_zero_advantage_and_mask_and_statistics_use_kept_rows(run):
    assert len(run["batches"]) == 3, run["log"][-3000:]
    bad = run["batches"][0]
    good, qafail = _rows(bad, "good"), _rows(bad, "qafail")
    # Kept: RIGHT (1.0) and ONE_WRONG (0.5) in each; mean 0.75, std 0.354 over those two only.
    for kept_high, kept_low, dropped in (
        (good[0], good[1], good[2:]),
        (qafail[0], qafail[2], [qafail[1], qafail[3]]),
    ):
        assert (kept_high["reward"], kept_low["reward"]) == (1.0, 0.5)
        assert kept_high["advantage"] == pytest.approx(0.7071, abs=1e-3)
        assert kept_low["advantage"] == pytest.approx(-0.7071, abs=1e-3)
        assert kept_high["mask_tokens"] > 0 and kept_low["mask_tokens"] > 0
        for row in dropped:
            assert (row["advantage"], row["mask_tokens"]) == (0.0, 0)
    # The truncated completion that ends at a row boundary is dropped, not scored as valid.
    assert good[2]["reward"] == 0.5  # the service scored what it could read …
    assert good[2]["mask_tokens"] == 0  # … but the truncation signal keeps it out
    assert all(math.isnan(r["reward"]) for r in (qafail[1], qafail[3]))  # failed, not 0
    for case in ("invalid", "nosignal"):
        for row in _rows(bad, case):
            assert (row["advantage"], row["mask_tokens"]) == (0.0, 0)
    assert all(math.isnan(r["reward"]) for r in _rows(bad, "nosignal"))


def test_metrics_count_each_kind(run):
    assert len(run["steps"]) == 3, (run["steps"], run["log"][-3000:])
    first, second = run["steps"][0], run["steps"][1]
    assert first[VALID_RATE] == pytest.approx(10 / 16)
    assert (first[TRUNCATED], first[MALFORMED]) == (2, 4)
    assert (first[FAILED], first[NO_SIGNAL]) == (2, 4)
    assert first[GROUPS_SKIPPED] == 2  # the invalid group and the no-signal group
    assert (second[FAILED], second[NO_SIGNAL]) == (0, 4)


def test_the_run_stops_only_when_failures_persist_past_the_threshold(run):
    # Step 1 above the threshold, step 2 clean (streak reset), steps 3 and 4 above: stop at 4.
    assert run["code"] != 0, run["log"][-3000:]
    assert "reward failures above 5% of completions for 2 consecutive steps (step 3)" in run["log"]
    assert "lost 2 of 12 rewards" in run["log"]  # no-signal rows are not counted as failures
