"""The training demo: tiny model, dataset, local reward stack, real GRPO steps, before and after.

Everything runs on this machine without a model hub: the model is built locally, randomly
initialised and warm-started on the training images and their tables' OTSL (small table
corners, so that a few hundred CPU steps half-teach them and sampled rewards differ), the QA
pairs come from those tables, the reward stack answers with the lookup answerer, and
``swift rlhf`` runs the project's plugin with the filter on. The warm-started and the trained
model are then scored on the held-out tables with the same decoding (``demo_eval``), and the
curves and the summary are written (``demo_report``). Output goes under one folder
(``runs/demo`` by default); progress is reported through ``say``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trivia.ports import free_port_block
from trivia.trainer.demo_data import OTSL_PROMPT, DemoTable, prepare_dataset
from trivia.trainer.demo_eval import Decoding, SplitScores
from trivia.trainer.launch import load_config, plan_launch
from trivia.trainer.metrics import FAILED, GROUPS_SKIPPED, VALID_RATE

QA_KEY = "rewards/QA_F1_score/mean"


@dataclass(frozen=True, slots=True)
class StepRow:
    """One logged training step."""

    step: int
    reward: float
    # Mean within-group standard deviation of the reward: the spread GRPO learns from.
    reward_std: float | None
    qa_f1: float | None
    valid_rate: float | None
    groups_skipped: float | None
    failures: float | None
    seconds: float | None


@dataclass
class DemoResult:
    """What the demo ran and where its output is."""

    steps: list[StepRow] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    # Held-out scores by decoding label: {"greedy": {"warm start": ..., "GRPO": ...}, ...}.
    held_out: dict[str, dict[str, SplitScores]] = field(default_factory=dict)
    held_out_tables: int = 0
    # The same, on the tables GRPO trained on: whether the QA reward moved the policy there.
    trained_on: dict[str, dict[str, SplitScores]] = field(default_factory=dict)
    trained_on_tables: int = 0
    seed: int = 0
    log: Path | None = None
    train_log: Path | None = None
    stack_logs: Path | None = None
    curves: Path | None = None
    summary: Path | None = None
    returncode: int = 0


def read_log(path: Path) -> tuple[list[StepRow], list[dict[str, float]]]:
    """Training steps and evaluations from ms-swift's ``logging.jsonl``."""
    steps: list[StepRow] = []
    evals: list[dict[str, float]] = []
    if not path.is_file():
        return steps, evals
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        progress = str(row.get("global_step/max_steps", ""))
        step = int(progress.split("/")[0]) if progress[:1].isdigit() else len(steps) + 1
        if "reward" in row:
            steps.append(
                StepRow(
                    step=step,
                    reward=float(row["reward"]),
                    reward_std=row.get("reward_std"),
                    qa_f1=row.get(QA_KEY),
                    valid_rate=row.get(VALID_RATE),
                    groups_skipped=row.get(GROUPS_SKIPPED),
                    failures=row.get(FAILED),
                    seconds=row.get("step_time"),
                )
            )
        elif "eval_reward" in row:
            evals.append(
                {k: v for k, v in row.items() if isinstance(v, int | float)} | {"step": step}
            )
    return steps, evals


def swift_option(argv: Sequence[str], name: str, default: str) -> str:
    """The value of the last ``--name`` in a ``swift`` command line (overrides come last)."""
    flag = f"--{name}"
    found = [argv[i + 1] for i in range(len(argv) - 1) if argv[i] == flag]
    return found[-1] if found else default


def swift_command() -> str:
    """The ``swift`` launcher of this interpreter's environment, else whatever is on PATH."""
    beside = Path(sys.executable).with_name("swift")
    return str(beside) if beside.exists() else "swift"


def _train(
    argv: Sequence[str], env: dict[str, str], log: Path, jsonl: Path, say: Callable[[str], None]
) -> int:
    """Run the trainer, its output into ``log``, reporting each logged step as it appears."""
    reported = 0
    with log.open("w", encoding="utf-8") as out:
        # Its own session: `swift rlhf` runs the trainer as a child, stopped with it as a group.
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while process.poll() is None:
                time.sleep(1.0)
                steps, _ = read_log(jsonl)
                for row in steps[reported:]:
                    say(_describe(row))
                reported = len(steps)
        finally:
            stop_process(process)
    for row in read_log(jsonl)[0][reported:]:
        say(_describe(row))
    return process.returncode


def stop_process(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """Stop ``process`` and its process group (it leads one): SIGTERM, SIGKILL after ``grace_s``.

    ``swift rlhf`` starts the trainer as a child process, and a trainer that ignores SIGTERM
    must not outlive the demo either.
    """
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is left
    process.wait()


def _describe(row: StepRow) -> str:
    parts = [f"step {row.step}: reward {row.reward:.3f}"]
    if row.valid_rate is not None:
        parts.append(f"valid {row.valid_rate:.0%}")
    if row.groups_skipped is not None:
        parts.append(f"groups skipped {row.groups_skipped:g}")
    if row.failures:
        parts.append(f"reward failures {row.failures:g}")
    if row.seconds is not None:
        parts.append(f"{row.seconds:.1f} s")
    return ", ".join(parts)


def run_demo(
    out: Path,
    config: Path,
    examples: Path,
    *,
    extra: Sequence[str] = (),
    workers: int = 2,
    warm_start_steps: int = 200,
    seed: int = 0,
    eval_samples: int = 8,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Build, prepare, serve, score, train, score again; return the steps, the scores, the paths.

    ``seed`` fixes the model's initialisation, the warm start, ms-swift's sampling and data
    order, and the evaluation's sampling. ``eval_samples`` completions per held-out table are
    drawn at the training temperature before and after training (0: greedy decoding only).
    """
    from trivia.reward.stack import Stack, StackConfig
    from trivia.trainer.demo_report import summary, write_curves, write_summary
    from trivia.trainer.tiny_model import build_tiny_qwen2_5_vl, warm_start

    out = out.resolve()
    data = prepare_dataset(examples, out / "data")
    say(
        f"dataset: {data.train_rows} training and {data.val_rows} held-out table corners, "
        f"{data.questions} generated questions, in {data.train.parent}"
    )
    model = out / "model"
    tables = data.train_tables
    # The model is reused only if it was built by this recipe (same tables, warm start, seed).
    recipe = json.dumps(
        {
            "warm_start_steps": warm_start_steps,
            "seed": seed,
            "targets": [table.otsl for table in tables],
        },
        sort_keys=True,
    )
    recipe_file = model / "trivia-demo-recipe.json"
    if not (model / "config.json").is_file() or _read_text(recipe_file) != recipe:
        say(f"building a tiny random Qwen2.5-VL in {model}")
        build_tiny_qwen2_5_vl(model, seed=seed)
        if warm_start_steps:
            say(f"warm start: {warm_start_steps} supervised steps on the training tables")
            loss = warm_start(
                model,
                OTSL_PROMPT,
                [table.otsl for table in tables],
                images=[table.image for table in tables],
                steps=warm_start_steps,
                seed=seed,
            )
            say(f"warm start done, loss {loss:.2f}")
        recipe_file.write_text(recipe)
    swift_out = out / "swift"
    jsonl = swift_out / "logging.jsonl"
    if jsonl.exists():
        jsonl.unlink()
    for old in swift_out.glob("checkpoint-*"):
        shutil.rmtree(old)
    overrides = ["--model", str(model), "--dataset", str(data.train)]
    overrides += ["--val_dataset", str(data.val), "--output_dir", str(swift_out)]
    overrides += ["--seed", str(seed), "--data_seed", str(seed)]
    plan = plan_launch(load_config(config), [*overrides, *extra], swift=swift_command())
    decodings = _decodings(plan.swift_args, eval_samples, seed)
    result = DemoResult(
        log=jsonl,
        train_log=out / "train.log",
        stack_logs=out / "stack" / "logs",
        held_out_tables=len(data.held_out_tables),
        trained_on_tables=len(data.train_tables),
        seed=seed,
    )
    stack_config = StackConfig(
        port=free_port_block(), qa_lookup=True, workers=workers, data_dir=out / "stack"
    )
    say("starting the reward stack (valkey, lookup answerer, workers, gateway)")
    with Stack(stack_config, say=lambda line: None) as stack:
        url = stack.gateway_url
        say(f"reward stack ready at {url}")
        # Each split's tables, and where their before/after scores go.
        splits = (
            ("held-out", data.held_out_tables, result.held_out),
            ("trained-on", data.train_tables, result.trained_on),
        )
        for split, tables, found in splits:
            before = _evaluate(model, model, split, tables, decodings, url, say)
            found.update({label: {"warm start": scores} for label, scores in before.items()})
        say(f"training (log: {result.train_log})")
        env = {**os.environ, **plan.env, "TRIVIA_REWARD_URL": url}
        swift_out.mkdir(parents=True, exist_ok=True)
        result.returncode = _train(plan.argv, env, result.train_log, jsonl, say)
        trained = _last_checkpoint(swift_out)
        if result.returncode == 0 and trained is not None:
            for split, tables, found in splits:
                after = _evaluate(trained, model, split, tables, decodings, url, say)
                for label, scores in after.items():
                    found[label]["GRPO"] = scores
        say("stopping the reward stack")
    result.steps, result.evals = read_log(jsonl)
    if result.steps:
        result.curves = write_curves(result, swift_out.parent / "curves.png")
        result.summary = write_summary(summary(result), out / "summary.json")
    return result


def _decodings(swift_args: Sequence[str], samples: int, seed: int) -> list[Decoding]:
    """Greedy, and sampled as in training (its temperature and completion length)."""
    length = int(swift_option(swift_args, "max_completion_length", "512"))
    greedy = Decoding(max_new_tokens=length, seed=seed)
    if not samples:
        return [greedy]
    temperature = float(swift_option(swift_args, "temperature", "1.0"))
    top_p = float(swift_option(swift_args, "top_p", "1.0"))
    top_k = max(int(swift_option(swift_args, "top_k", "-1")), 0)
    sampled = Decoding(temperature, samples, top_k, top_p, length, seed)
    return [greedy, sampled]


def _evaluate(
    model: Path,
    processor: Path,
    split: str,
    tables: list[DemoTable],
    decodings: Sequence[Decoding],
    reward_url: str,
    say: Callable[[str], None],
) -> dict[str, SplitScores]:
    from trivia.trainer.demo_eval import generate_completions, qa_f1_scores, score_split

    scores: dict[str, SplitScores] = {}
    for decoding in decodings:
        completions = generate_completions(model, OTSL_PROMPT, tables, decoding, processor)
        qa = qa_f1_scores(reward_url, tables, completions)
        scores[decoding.label] = found = score_split(tables, completions, qa)
        say(
            f"{split}, {model.name}, {decoding.label}: TEDS {found.teds:.3f}, "
            f"TEDS-S {found.teds_s:.3f}, QA-F1 {found.qa_f1:.3f}"
        )
    return scores


def _last_checkpoint(swift_out: Path) -> Path | None:
    """The checkpoint ms-swift saved at the last step (``checkpoint-N``, highest N)."""
    saved = [p for p in swift_out.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(saved, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _read_text(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None
