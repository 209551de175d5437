"""The demo's report: the curves (``curves.png``), the summary (``summary.json``) and its table.

The curves show what GRPO saw at each step (reward mean and within-group spread, valid rate,
groups skipped) and the held-out TEDS at each evaluation; the summary compares the warm-started
and the trained model, decoding by decoding, on the held-out tables (did it generalise?) and on
the tables GRPO trained on (did the QA reward move the policy at all?).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from trivia.trainer.metrics import TEDS, TEDS_STRUCTURE

if TYPE_CHECKING:
    from trivia.trainer.demo import DemoResult
    from trivia.trainer.demo_eval import SplitScores


# (SplitScores field, label): what the before/after table shows, in order.
METRICS = (
    ("teds", "TEDS"),
    ("teds_s", "TEDS-S"),
    ("teds_normalised", "TEDS, normalised"),
    ("teds_s_normalised", "TEDS-S, normalised"),
    ("qa_f1", "QA-F1"),
)
BEFORE, AFTER = "warm start", "GRPO"
# Evaluation metrics as ms-swift logs them.
EVAL_TEDS, EVAL_TEDS_S = f"eval_{TEDS}", f"eval_{TEDS_STRUCTURE}"


def write_curves(result: DemoResult, path: Path) -> Path:
    """Draw the training curves and held-out evaluations to ``path`` (PNG); return ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row.step for row in result.steps]
    reward = [row.reward for row in result.steps]
    spread = [row.reward_std or 0.0 for row in result.steps]
    figure, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True)
    top_left, top_right, bottom_left, bottom_right = axes.flat
    top_left.plot(steps, reward, color="tab:blue", label="mean")
    top_left.fill_between(
        steps,
        [r - s for r, s in zip(reward, spread, strict=True)],
        [r + s for r, s in zip(reward, spread, strict=True)],
        color="tab:blue",
        alpha=0.2,
        label="± within-group std",
    )
    top_left.set_title("training reward (QA-F1)")
    top_left.legend(loc="upper left", fontsize=8)
    top_right.plot(steps, [row.valid_rate for row in result.steps], color="tab:green")
    top_right.set_ylim(-0.05, 1.05)
    top_right.set_title("valid rate (filter)")
    bottom_left.bar(steps, [row.groups_skipped or 0 for row in result.steps], color="tab:orange")
    bottom_left.set_title("groups skipped")
    bottom_left.set_xlabel("step")
    evals = [e for e in result.evals if EVAL_TEDS in e]
    at = [e["step"] for e in evals]
    for key, label in ((EVAL_TEDS, "TEDS"), (EVAL_TEDS_S, "TEDS-S")):
        bottom_right.plot(at, [e.get(key) for e in evals], "o-", label=label)
    bottom_right.set_ylim(-0.05, 1.05)  # TEDS lies in [0, 1]
    bottom_right.set_title(f"held-out ({result.held_out_tables} tables), sampled as in training")
    bottom_right.set_xlabel("step")
    bottom_right.legend(loc="lower right", fontsize=8)
    for axis in axes.flat:
        axis.grid(alpha=0.3)
    figure.suptitle(f"GRPO demo, seed {result.seed}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summary(result: DemoResult, *, window: int | None = None) -> dict[str, Any]:
    """Everything the summary table shows, as plain data (written to ``summary.json``).

    The training reward is compared over the first and the last ``window`` steps (default: a
    fifth of them, at least 5): one step's reward, over 2 tables, is mostly noise.
    """
    rewards = [row.reward for row in result.steps]
    window = window or max(5, len(rewards) // 5)
    return {
        "seed": result.seed,
        "steps": len(result.steps),
        "held_out_tables": result.held_out_tables,
        "trained_on_tables": result.trained_on_tables,
        "training_reward": {
            "window": window,
            "first": _mean(rewards[:window]),
            "last": _mean(rewards[-window:]),
        },
        "held_out_evaluations": [
            {"step": e["step"], "teds": e.get(EVAL_TEDS), "teds_s": e.get(EVAL_TEDS_S)}
            for e in result.evals
            if EVAL_TEDS in e
        ],
        "held_out": _plain(result.held_out),
        "trained_on": _plain(result.trained_on),
    }


def _plain(scores: dict[str, dict[str, SplitScores]]) -> dict[str, dict[str, dict[str, float]]]:
    return {
        decoding: {model: found.as_dict() for model, found in by_model.items()}
        for decoding, by_model in scores.items()
    }


def write_summary(data: dict[str, Any], path: Path) -> Path:
    """Write ``data`` (from ``summary``) as JSON to ``path``; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def summary_table(data: dict[str, Any], title: str) -> Table:
    """Scores of the warm-started and the trained model, one row per metric, split and decoding."""
    table = Table(title=title)
    for column in ("metric", "tables", "decoding", BEFORE, AFTER, "change"):
        table.add_column(column, justify="right" if column in (BEFORE, AFTER, "change") else "left")
    splits = (
        (f"held-out ({data['held_out_tables']})", data["held_out"]),
        (f"trained on ({data.get('trained_on_tables', 0)})", data.get("trained_on", {})),
    )
    for tables, scores in splits:
        for decoding, by_model in scores.items():
            before, after = by_model.get(BEFORE), by_model.get(AFTER)
            for key, label in METRICS:
                old = before[key] if before else None
                new = after[key] if after else None
                change = f"{new - old:+.3f}" if old is not None and new is not None else "-"
                table.add_row(label, tables, decoding, _cell(old), _cell(new), change)
            table.add_section()
    reward = data["training_reward"]
    if reward["first"] is not None:
        table.add_row(
            f"training reward, mean of first / last {reward['window']} steps",
            "trained on",
            "as trained",
            _cell(reward["first"]),
            _cell(reward["last"]),
            f"{reward['last'] - reward['first']:+.3f}",
        )
    return table


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
