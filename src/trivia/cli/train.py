"""Trainer commands: `trivia train`, `demo`, `tiny-model` and `data qa-from-table`."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import trivia
from trivia.cli import app, data_app
from trivia.cli._common import choices
from trivia.cli.tables import fail

REPO = Path(trivia.__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "configs" / "demo-cpu.yaml"
EXAMPLES = REPO / "examples" / "pubtabnet"
_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command("train", context_settings=_EXTRA)
def train_command(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", exists=True, dir_okay=False, help="Launch config (YAML).")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the command; run nothing.")
    ] = False,
) -> None:
    """Run `swift rlhf` with the project's plugin from a launch config.

    SIGTERM or Ctrl-C saves a checkpoint at the end of the step in progress and stops; a second
    one stops at once.

    Arguments after `--` are appended: ms-swift flags, or the plugin's (`--rejection_strategy
    prob --rejection_min_logprob -1.5`), which travel as TRIVIA_* variables.
    """
    from trivia.trainer.demo import swift_command
    from trivia.trainer.launch import ConfigError, load_config, plan_launch, torchrun_argv
    from trivia.trainer.stop_request import run_stoppable

    try:
        plan = plan_launch(load_config(config), ctx.args, swift=swift_command())
    except ConfigError as error:
        raise fail(str(error)) from error
    if dry_run:
        typer.echo(plan.shell())
        torchrun = torchrun_argv(
            plan, os.environ, python=sys.executable, script=_swift_script("rlhf")
        )
        if torchrun:
            typer.echo(f"# which ms-swift runs as:\n{shlex.join(torchrun)}")
        return
    unset = sorted({a for a in plan.argv + list(plan.env.values()) if "${" in a})
    if unset:
        raise fail(f"unset variables in {config}: {', '.join(unset)}")
    from trivia.trainer.datasets import DatasetError, check_validation_file, local_files

    try:
        for path in local_files(plan.values("--val_dataset")):
            check_validation_file(path)
    except DatasetError as error:
        raise fail(str(error)) from error
    try:
        code = run_stoppable(plan.argv, {**os.environ, **plan.env})
    except FileNotFoundError as error:
        raise fail(
            f"{plan.argv[0]} not found: install the train extra (make install-train)"
        ) from error
    # A run killed by a signal exits as a shell reports it (SIGTERM: 143).
    raise typer.Exit(code if code >= 0 else 128 - code)


def _swift_script(command: str) -> str:
    """ms-swift's script for ``swift <command>``; its path in the package where not installed."""
    try:
        spec = importlib.util.find_spec(f"swift.cli.{command}")
    except ImportError:
        spec = None
    return spec.origin if spec and spec.origin else f"swift/cli/{command}.py"


#: `trivia tiny-model`'s kinds and the builders of `trivia.trainer.tiny_model` they run.
_TINY_BUILDERS = {"vl": "build_tiny_qwen2_5_vl", "qwen3": "build_tiny_qwen3"}
TinyKind = choices("TinyKind", _TINY_BUILDERS)


@app.command("tiny-model")
def tiny_model_command(
    kind: Annotated[TinyKind, typer.Argument(help="vl: Qwen2.5-VL (policy); qwen3: a QA LLM.")],
    output: Annotated[Path, typer.Argument(file_okay=False, help="Folder to write.")],
    seed: int = 0,
) -> None:
    """Build a tiny randomly initialised model and its tokenizer locally (no model hub)."""
    try:
        from trivia.trainer import tiny_model
    except ImportError as error:
        raise fail(f"{error}: install the train extra (make install-train)") from error
    build = getattr(tiny_model, _TINY_BUILDERS[kind])
    typer.echo(str(build(output, seed=seed)))


@app.command("demo", context_settings=_EXTRA)
def demo_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Where the model, data, stack and logs go.")] = Path(
        "runs/demo"
    ),
    config: Annotated[Path, typer.Option(exists=True, dir_okay=False)] = DEMO_CONFIG,
    examples: Annotated[Path, typer.Option(exists=True, file_okay=False)] = EXAMPLES,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Training steps (default: the config's max_steps).")
    ] = None,
    warm_start_steps: Annotated[
        int, typer.Option(min=0, help="Steps teaching a new tiny model to answer in OTSL.")
    ] = 200,
    seed: Annotated[
        int, typer.Option(help="Seeds the model, the warm start, training and evaluation.")
    ] = 0,
    eval_samples: Annotated[
        int, typer.Option(min=0, help="Sampled completions per held-out table (0: greedy only).")
    ] = 8,
) -> None:
    """Train for real on CPU: tiny model, QA pairs from the examples, local stack, GRPO.

    The table-core checks that `trivia demo` used to run are `trivia score-examples`.
    """
    from trivia.trainer.demo import run_demo
    from trivia.trainer.demo_report import summary_table

    console = Console(stderr=True, highlight=False)
    extra = list(ctx.args) + (["--max_steps", str(steps)] if steps else [])
    started = time.monotonic()
    result = run_demo(
        out,
        config,
        examples,
        extra=extra,
        warm_start_steps=warm_start_steps,
        seed=seed,
        eval_samples=eval_samples,
        say=lambda s: console.print(f"• {s}"),
    )
    minutes = (time.monotonic() - started) / 60
    if result.summary is not None:
        title = f"GRPO demo, seed {seed}: {len(result.steps)} steps in {minutes:.1f} min"
        data = json.loads(result.summary.read_text(encoding="utf-8"))
        Console().print(summary_table(data, title))
        typer.echo(f"curves: {result.curves}\nsummary: {result.summary}")
    typer.echo(f"metrics: {result.log}\ntrainer output: {result.train_log}")
    typer.echo(f"reward stack logs: {result.stack_logs}")
    if result.returncode or len(result.steps) == 0:
        raise fail(f"training failed (exit {result.returncode}); see {result.train_log}", 1)


@data_app.command("qa-from-table")
def qa_from_table_command(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.jsonl",
            exists=True,
            dir_okay=False,
            help="Rows with a ground-truth `solution` (HTML) or a PubTabNet `html` annotation.",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the rows.")],
    kinds: Annotated[
        str, typer.Option(help="Comma-separated: cell (lookup-answerable), count, unit.")
    ] = "cell",
    max_questions: Annotated[int, typer.Option(min=1, help="Most cell questions per table.")] = 30,
) -> None:
    """Add deterministic `qa_pairs` made from each row's ground-truth table."""
    from trivia.dataset import pubtabnet_html
    from trivia.dataset.qa_from_table import KINDS, qa_from_table

    chosen = [k.strip() for k in kinds.split(",") if k.strip()]
    if not chosen or set(chosen) - set(KINDS):
        raise typer.BadParameter(f"choose from {', '.join(KINDS)}", param_hint="--kinds")
    rows, questions, empty = [], 0, 0
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            html = row["solution"] if row.get("solution") else pubtabnet_html(row["html"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise fail(f"{file}:{number}: no ground-truth table ({error})") from error
        row["qa_pairs"] = qa_from_table(html, kinds=chosen, max_questions=max_questions)
        questions += len(row["qa_pairs"])
        empty += not row["qa_pairs"]
        rows.append(row)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    typer.echo(f"{questions} questions for {len(rows)} tables ({empty} without any) in {output}")
