"""The training demo: tiny model, dataset, local reward stack, a few real GRPO steps, summary.

Everything runs on this machine without a model hub: the model is built locally, randomly
initialised and warm-started on the training images and their tables' OTSL (small table
corners, so that a few hundred CPU steps half-teach them and sampled rewards differ), the QA
pairs come from those tables, the reward stack answers with the lookup answerer, and
``swift rlhf`` runs the project's plugin with the filter on. Output goes
under one folder (``runs/demo`` by default); progress is reported through ``say``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trivia.ports import free_port_block
from trivia.trainer.demo_data import OTSL_PROMPT, prepare_dataset
from trivia.trainer.launch import load_config, plan_launch
from trivia.trainer.metrics import FAILED, GROUPS_SKIPPED, VALID_RATE

QA_KEY = "rewards/QA_F1_score/mean"


@dataclass(frozen=True, slots=True)
class StepRow:
    """One logged training step."""

    step: int
    reward: float
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
    log: Path | None = None
    train_log: Path | None = None
    stack_logs: Path | None = None
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
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            while process.poll() is None:
                time.sleep(1.0)
                steps, _ = read_log(jsonl)
                for row in steps[reported:]:
                    say(_describe(row))
                reported = len(steps)
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(30)
    for row in read_log(jsonl)[0][reported:]:
        say(_describe(row))
    return process.returncode


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
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Build, prepare, serve and train; return the logged steps and where everything is."""
    from trivia.reward.stack import Stack, StackConfig
    from trivia.trainer.tiny_model import build_tiny_qwen2_5_vl, warm_start

    out = out.resolve()
    data = prepare_dataset(examples, out / "data")
    say(
        f"dataset: {data.train_rows} training and {data.val_rows} validation table corners, "
        f"{data.questions} generated questions, in {data.train.parent}"
    )
    model = out / "model"
    tables = data.train_tables
    # The model is reused only if it was built by this recipe (same tables, same warm start).
    recipe = json.dumps(
        {"warm_start_steps": warm_start_steps, "targets": [table.otsl for table in tables]},
        sort_keys=True,
    )
    recipe_file = model / "trivia-demo-recipe.json"
    if not (model / "config.json").is_file() or _read_text(recipe_file) != recipe:
        say(f"building a tiny random Qwen2.5-VL in {model}")
        build_tiny_qwen2_5_vl(model)
        if warm_start_steps:
            say(f"warm start: {warm_start_steps} supervised steps on the training tables")
            loss = warm_start(
                model,
                OTSL_PROMPT,
                [table.otsl for table in tables],
                images=[table.image for table in tables],
                steps=warm_start_steps,
            )
            say(f"warm start done, loss {loss:.2f}")
        recipe_file.write_text(recipe)
    swift_out = out / "swift"
    jsonl = swift_out / "logging.jsonl"
    if jsonl.exists():
        jsonl.unlink()
    overrides = ["--model", str(model), "--dataset", str(data.train)]
    overrides += ["--val_dataset", str(data.val), "--output_dir", str(swift_out)]
    plan = plan_launch(load_config(config), [*overrides, *extra], swift=swift_command())
    result = DemoResult(log=jsonl, train_log=out / "train.log", stack_logs=out / "stack" / "logs")
    stack_config = StackConfig(
        port=free_port_block(), qa_lookup=True, workers=workers, data_dir=out / "stack"
    )
    say("starting the reward stack (valkey, lookup answerer, workers, gateway)")
    with Stack(stack_config, say=lambda line: None) as stack:
        say(f"reward stack ready at {stack.gateway_url}; training (log: {result.train_log})")
        env = {**os.environ, **plan.env, "TRIVIA_REWARD_URL": stack.gateway_url}
        swift_out.mkdir(parents=True, exist_ok=True)
        result.returncode = _train(plan.argv, env, result.train_log, jsonl, say)
        say("stopping the reward stack")
    result.steps, result.evals = read_log(jsonl)
    return result


def _read_text(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None
