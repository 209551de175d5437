"""`trivia data qa`: verified, diverse question-answer pairs for the selected images.

Beside the output ``DATASET.jsonl`` it keeps ``DATASET.progress.jsonl`` (one record per finished
image: the resume point and the details of every drop), ``DATASET.replies.jsonl`` (each
generator reply, so a verifier outage does not cost generator work), ``DATASET.failed.jsonl``
(unreadable images) and writes ``DATASET.rejected.jsonl`` (every rejected question with the
verifier's answers, their F1 and the reason) and ``DATASET.summary.json``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table as RichTable

from trivia.cli import data_app
from trivia.cli._common import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    AbortAfter,
    ApiKey,
    Concurrency,
    MaxPixels,
    MinPixels,
    ProbeFor,
    Timeout,
    VLMOptions,
    err,
    fail,
    failed_path,
    on_outcome,
    open_store,
    out,
    print_run,
    progress,
)
from trivia.engine.qa_pipeline import QASettings
from trivia.settings import ENGINE

if TYPE_CHECKING:
    from trivia.engine.runner import RunSummary
    from trivia.engine.store import ResultStore
    from trivia.engine.vlm import VLMClient

_err = err
_out = out
#: Images listed one by one in the printed report; the summary file lists all.
_SHOWN_IMAGES = 30
_DEFAULTS = QASettings()

Urls = list[str]


def companion_paths(output: Path) -> tuple[Path, Path]:
    """(progress store, summary file) kept beside the dataset `output`."""
    stem = output.name.removesuffix(".jsonl")
    return output.with_name(f"{stem}.progress.jsonl"), output.with_name(f"{stem}.summary.json")


def audit_paths(output: Path) -> tuple[Path, Path]:
    """(generator replies, rejected questions) kept beside the dataset `output`."""
    stem = output.name.removesuffix(".jsonl")
    return output.with_name(f"{stem}.replies.jsonl"), output.with_name(f"{stem}.rejected.jsonl")


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
    output: Annotated[Path, typer.Option("--out", help="Dataset JSONL in the training format.")],
    per_image: Annotated[
        int, typer.Option(min=1, help="Questions kept per image.")
    ] = _DEFAULTS.per_image,
    rounds: Annotated[
        int, typer.Option(min=1, help="Most generation rounds per image.")
    ] = _DEFAULTS.rounds,
    candidates_per_round: Annotated[
        int, typer.Option(min=1, help="Questions asked of the generator per round.")
    ] = _DEFAULTS.candidates_per_round,
    with_threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Keep if token F1 with the image ≥ this.")
    ] = _DEFAULTS.with_threshold,
    without_threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Drop if token F1 without it ≥ this.")
    ] = _DEFAULTS.without_threshold,
    seed: Annotated[
        int, typer.Option(help="Base seed of the generator's sampling.")
    ] = _DEFAULTS.seed,
    generator_model: Annotated[
        str | None, typer.Option(help="Generator model (default: from /v1/models).")
    ] = None,
    verifier_model: Annotated[
        str | None, typer.Option(help="Verifier model (default: from /v1/models).")
    ] = None,
    generator_revision: Annotated[
        str | None, typer.Option(help="Generator checkpoint revision (part of the resume key).")
    ] = None,
    verifier_revision: Annotated[
        str | None, typer.Option(help="Verifier checkpoint revision (part of the resume key).")
    ] = None,
    generator_temperature: Annotated[
        float, typer.Option(min=0.0, help="Sampling temperature of the generator.")
    ] = _DEFAULTS.generator_temperature,
    generator_top_p: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Generator nucleus sampling (1: off).")
    ] = _DEFAULTS.generator_top_p,
    generator_top_k: Annotated[
        int, typer.Option(min=-1, help="Generator top-k (-1: off).")
    ] = _DEFAULTS.generator_top_k,
    generator_min_p: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Generator min-p (0: off).")
    ] = _DEFAULTS.generator_min_p,
    generator_repetition_penalty: Annotated[
        float, typer.Option(min=0.0, help="Generator repetition penalty (1: off).")
    ] = _DEFAULTS.generator_repetition_penalty,
    concurrency: Concurrency = ENGINE.vlm_concurrency_per_endpoint,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Images in progress at once (default: concurrency × URLs)."),
    ] = None,
    api_key: ApiKey = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    min_pixels: MinPixels = DEFAULT_MIN_PIXELS,
    timeout: Timeout = ENGINE.vlm_request_timeout_s,
    abort_after: AbortAfter = ENGINE.abort_after,
    probe_for: ProbeFor = ENGINE.probe_for_s,
) -> None:
    """Generate questions about each image, keep those a second model verifies with the image
    and cannot answer without it, remove near-duplicates, and keep a subset that covers the
    table. Resumable: re-run the same command to finish an interrupted run. Exit 0 all done,
    3 unreadable images skipped, 1 server failures remain."""
    from trivia.engine.qa_dataset import duplicate_images, iter_selected

    try:
        settings = QASettings(
            per_image=per_image,
            rounds=rounds,
            candidates_per_round=candidates_per_round,
            with_threshold=with_threshold,
            without_threshold=without_threshold,
            seed=seed,
            generator_temperature=generator_temperature,
            generator_top_p=generator_top_p,
            generator_top_k=generator_top_k,
            generator_min_p=generator_min_p,
            generator_repetition_penalty=generator_repetition_penalty,
        )
        settings.generator_sampling  # noqa: B018 - checks the sampling fields
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    duplicates = duplicate_images(selected)
    if duplicates:
        for problem in duplicates[:20]:
            _err.print(problem)
        fail(f"{len(duplicates)} images appear twice in {selected}; nothing was done")
    try:
        total = sum(1 for _ in iter_selected(selected))
    except ValueError as exc:
        fail(str(exc))
    generator = VLMOptions(
        generator_url, generator_model, api_key, concurrency, timeout, max_pixels, min_pixels
    ).client("--generator-url")
    verifier = VLMOptions(
        verifier_url, verifier_model, api_key, concurrency, timeout, max_pixels, min_pixels
    ).client("--verifier-url")
    progress_path, summary_path = companion_paths(output)
    replies_path, rejected_path = audit_paths(output)
    store = open_store(progress_path)
    replies = open_store(replies_path)
    unreadable = open_store(failed_path(output))
    in_flight = workers or concurrency * len(generator.stats())
    from trivia.engine.qa_dataset import write_dataset
    from trivia.engine.qa_summary import SummaryBuilder

    builder = SummaryBuilder(keep_first=_SHOWN_IMAGES)
    try:
        run, keys, models = _run(
            generator,
            verifier,
            iter_selected(selected),
            total,
            (store, replies, unreadable),
            settings,
            in_flight,
            (generator_revision, verifier_revision),
            {"abort_after": abort_after, "probe_for_s": probe_for},
        )
        rows = write_dataset(store, keys, output, rejected=rejected_path, on_record=builder.add)
    finally:
        store.close()
        replies.close()
        unreadable.close()
    report = builder.summary(
        run,
        settings,
        models,
        paths={
            "input": selected,
            "output": output,
            "progress": progress_path,
            "rejected": rejected_path,
            "replies": replies_path,
        },
        rows=rows,
    )
    builder.write(summary_path, report)
    _print_report(report, builder.first)
    print_run(run, "images done", progress_path, len(keys))
    _out.print(
        f"wrote {rows} rows to {output}; rejected questions: {rejected_path}; "
        f"summary: {summary_path}"
    )
    raise typer.Exit(run.exit_code)


def _run(
    generator: VLMClient,
    verifier: VLMClient,
    records: Any,
    total: int,
    stores: tuple[ResultStore, ResultStore, ResultStore],
    settings: QASettings,
    workers: int,
    revisions: tuple[str | None, str | None],
    abort: dict[str, Any],
) -> tuple[RunSummary, list[str], dict[str, Any]]:
    from trivia.engine.qa_pipeline import generate_qa
    from trivia.llm.errors import LLMError

    store, replies, unreadable = stores

    async def run() -> tuple[RunSummary, list[str], dict[str, Any]]:
        async with generator, verifier:
            with progress() as bar:
                task = bar.add_task("questions", total=total)
                summary, keys = await generate_qa(
                    generator,
                    verifier,
                    records,
                    store,
                    settings,
                    workers=workers,
                    replies=replies,
                    unreadable=unreadable,
                    on_outcome=on_outcome(bar, task),
                    model_revisions=revisions,
                    **abort,
                )
            models = {
                "generator": await generator.model_fingerprint(revisions[0]),
                "verifier": await verifier.model_fingerprint(revisions[1]),
            }
            return summary, keys, models

    try:
        return asyncio.run(run())
    except LLMError as exc:  # the models could not be read: nothing was done
        fail(str(exc))


def _print_report(report: dict[str, Any], first: list[dict[str, Any]]) -> None:
    """The report of the first images (`first`), the drops and the counts."""
    images = RichTable(title="questions per image", show_edge=False)
    for column in ("image", "candidates", "verified", "kept", "rows", "cols", "most dropped"):
        images.add_column(
            column, justify="left" if column in ("image", "most dropped") else "right"
        )
    for entry in first[:_SHOWN_IMAGES]:
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
    hidden = report["images"] - _SHOWN_IMAGES
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
        f"{run['failed']} failed, {run['unreadable']} unreadable): {report['kept']} of "
        f"{report['candidates']} proposed questions kept"
    )


@data_app.command("review")
def review_command(
    folder: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, help="Folder of a `trivia data qa` run (its --out's)."
        ),
    ],
    output: Annotated[Path, typer.Option("--out", help="The index page (HTML) to write.")],
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many images (default: all).")
    ] = None,
) -> None:
    """Pages to judge the questions: per image, the image, the recognised table with the kept
    answers' cells highlighted, the kept pairs, and every rejected question with its reason."""
    from trivia.engine.review import write_review

    index, shown = write_review(folder, output, limit=limit)
    if shown == 0:
        fail(f"no *.progress.jsonl records in {folder}")
    _out.print(f"wrote {index} and {shown} image pages")
