"""`trivia data qa`: verified, diverse question-answer pairs for the selected images.

Beside the output ``DATASET.jsonl`` it keeps ``DATASET.progress.jsonl`` (one record per finished
image: the resume point and the details of every drop) and writes ``DATASET.summary.json``
(per-image counts, drops by reason, settings).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from trivia.cli import data_app
from trivia.cli.engine import ApiKey, Concurrency, MaxPixels, MinPixels, Timeout
from trivia.engine.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS

if TYPE_CHECKING:
    from trivia.engine.qa_pipeline import ImageOutcome, QASettings, QASummary
    from trivia.engine.vlm import VLMClient

_err = Console(stderr=True)
_out = Console()
#: Images listed one by one in the printed report; the summary file lists all.
_SHOWN_IMAGES = 30

Urls = list[str]


def companion_paths(out: Path) -> tuple[Path, Path]:
    """(progress store, summary file) kept beside the dataset `out`."""
    stem = out.name.removesuffix(".jsonl")
    return out.with_name(f"{stem}.progress.jsonl"), out.with_name(f"{stem}.summary.json")


def _client(
    urls: list[str], option: str, model: str | None, api_key: str | None, **kwargs: Any
) -> VLMClient:
    from trivia.engine.vlm import VLMClient

    try:
        return VLMClient(urls, model=model, api_key=api_key, **kwargs)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@data_app.command("qa")
def qa_command(
    generator_url: Annotated[
        Urls,
        typer.Option(
            "--generator-url", help="VLM that proposes questions; repeat or comma-separate."
        ),
    ],
    verifier_url: Annotated[
        Urls,
        typer.Option("--verifier-url", help="VLM that checks them; repeat or comma-separate."),
    ],
    selected: Annotated[
        Path,
        typer.Option(
            "--in",
            exists=True,
            dir_okay=False,
            help="Images with their recognitions: `trivia data select` (or `sample`) output.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Dataset JSONL in the training format.")],
    per_image: Annotated[int, typer.Option(min=1, help="Questions kept per image.")] = 30,
    rounds: Annotated[int, typer.Option(min=1, help="Most generation rounds per image.")] = 3,
    candidates_per_round: Annotated[
        int, typer.Option(min=1, help="Questions asked of the generator per round.")
    ] = 40,
    with_threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Keep if token F1 with the image ≥ this.")
    ] = 0.8,
    without_threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Drop if token F1 without it ≥ this.")
    ] = 0.8,
    seed: Annotated[int, typer.Option(help="Seed of the generator's sampling.")] = 0,
    generator_model: Annotated[
        str | None, typer.Option(help="Generator model (default: from /v1/models).")
    ] = None,
    verifier_model: Annotated[
        str | None, typer.Option(help="Verifier model (default: from /v1/models).")
    ] = None,
    generator_temperature: Annotated[
        float, typer.Option(min=0.0, help="Sampling temperature of the generator.")
    ] = 0.7,
    concurrency: Concurrency = 16,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Images in progress at once (default: concurrency × URLs)."),
    ] = None,
    api_key: ApiKey = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    min_pixels: MinPixels = DEFAULT_MIN_PIXELS,
    timeout: Timeout = 300.0,
) -> None:
    """Generate questions about each image, keep those a second model verifies with the image
    and cannot answer without it, remove near-duplicates, and keep a subset that covers the
    table. Resumable: re-run the same command to finish an interrupted run."""
    from trivia.engine.qa_dataset import read_selected, write_dataset
    from trivia.engine.qa_pipeline import QASettings
    from trivia.engine.store import ResultStore, StoreLocked

    try:
        settings = QASettings(
            per_image=per_image,
            rounds=rounds,
            candidates_per_round=candidates_per_round,
            with_threshold=with_threshold,
            without_threshold=without_threshold,
            seed=seed,
            generator_temperature=generator_temperature,
        )
        records = read_selected(selected)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    limits = {
        "max_concurrency_per_endpoint": concurrency,
        "request_timeout_s": timeout,
        "max_pixels": max_pixels,
        "min_pixels": min_pixels,
    }
    generator = _client(generator_url, "--generator-url", generator_model, api_key, **limits)
    verifier = _client(verifier_url, "--verifier-url", verifier_model, api_key, **limits)
    progress_path, summary_path = companion_paths(out)
    try:
        store = ResultStore(progress_path)
    except (StoreLocked, ValueError) as exc:
        _err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    in_flight = workers or concurrency * len(generator.stats())
    try:
        summary, keys, models = _run(generator, verifier, records, store, settings, in_flight)
        rows, used = write_dataset(store, keys, out)
    finally:
        store.close()
    report = _summary(
        summary,
        used,
        settings,
        models,
        paths={"input": selected, "output": out, "progress": progress_path},
        rows=rows,
    )
    summary_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    _print_report(report)
    _out.print(f"wrote {rows} rows to {out}; summary: {summary_path}")
    if summary.failed:
        _err.print(f"[red]{len(summary.failed)} images failed[/red] (re-run to retry them)")
        raise typer.Exit(1)


def _run(
    generator: VLMClient,
    verifier: VLMClient,
    records: list[dict[str, Any]],
    store: Any,
    settings: QASettings,
    workers: int,
) -> tuple[QASummary, list[str], dict[str, str]]:
    from trivia.engine.qa_pipeline import generate_qa
    from trivia.llm.errors import LLMError

    async def run() -> tuple[QASummary, list[str], dict[str, str]]:
        async with generator, verifier:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=_err,
            ) as progress:
                task = progress.add_task("questions", total=len(records))

                def advance(outcome: ImageOutcome) -> None:
                    progress.advance(task)
                    if outcome.status == "failed":
                        progress.console.print(
                            f"[red]failed[/red] {outcome.image}: {outcome.error}"
                        )

                summary, keys = await generate_qa(
                    generator,
                    verifier,
                    records,
                    store,
                    settings,
                    workers=workers,
                    on_outcome=advance,
                )
            models = {
                "generator": await generator.model_name(),
                "verifier": await verifier.model_name(),
            }
            return summary, keys, models

    try:
        return asyncio.run(run())
    except LLMError as exc:  # the model names could not be read: nothing was done
        _err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _summary(
    summary: QASummary,
    used: list[dict[str, Any]],
    settings: QASettings,
    models: dict[str, str],
    *,
    paths: dict[str, Path],
    rows: int,
) -> dict[str, Any]:
    """The JSON summary: this run's outcome and the whole dataset's counts and drops."""
    from trivia.engine.qa_candidate import DROP_REASONS

    drops: Counter[str] = Counter()
    for record in used:
        drops.update(record.get("drops", {}))
    per_image = [
        {
            "image": record["image"],
            "key": record["key"],
            "candidates": record["candidates"],
            "verified": record["verified"],
            "kept": len(record["qa_pairs"]),
            "rounds": record["rounds"],
            "drops": record["drops"],
            "table": record["table"],
            "coverage": record["coverage"],
        }
        for record in used
    ]
    return {
        **{name: str(path) for name, path in paths.items()},
        "models": models,
        "settings": asdict(settings),
        "run": {"done": summary.done, "skipped": summary.skipped, "failed": len(summary.failed)},
        "images": len(used),
        "rows": rows,
        "candidates": sum(r["candidates"] for r in used),
        "kept": sum(len(r["qa_pairs"]) for r in used),
        "drops": {reason: drops[reason] for reason in DROP_REASONS if drops[reason]},
        "drop_reasons": DROP_REASONS,
        "per_image": per_image,
        "failed": [{"image": f.image, "error": f.error} for f in summary.failed],
    }


def _print_report(report: dict[str, Any]) -> None:
    images = RichTable(title="questions per image", show_edge=False)
    for column in ("image", "candidates", "verified", "kept", "rows", "cols", "most dropped"):
        images.add_column(
            column, justify="left" if column in ("image", "most dropped") else "right"
        )
    for entry in report["per_image"][:_SHOWN_IMAGES]:
        table, reach = entry["table"], entry["coverage"]
        bad = [(reason, n) for reason, n in entry["drops"].items() if reason != "surplus"]
        top = sorted(bad, key=lambda item: -item[1])[:3]
        images.add_row(
            Path(entry["image"]).name,
            str(entry["candidates"]),
            str(entry["verified"]),
            str(entry["kept"]),
            f"{reach['rows']}/{table['rows']}",
            f"{reach['cols']}/{table['cols']}",
            ", ".join(f"{reason} {n}" for reason, n in top),
        )
    _out.print(images)
    hidden = len(report["per_image"]) - _SHOWN_IMAGES
    if hidden > 0:
        _out.print(f"… and {hidden} more images (all in the summary file)")
    drops = RichTable(title="dropped questions", show_edge=False)
    drops.add_column("reason")
    drops.add_column("count", justify="right")
    drops.add_column("why")
    for reason, count in report["drops"].items():
        drops.add_row(reason, str(count), report["drop_reasons"][reason])
    _out.print(drops)
    run = report["run"]
    _out.print(
        f"{report['images']} images ({run['done']} done now, {run['skipped']} earlier, "
        f"{run['failed']} failed): {report['kept']} of {report['candidates']} proposed "
        f"questions kept"
    )
