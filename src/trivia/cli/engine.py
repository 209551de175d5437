"""Data-engine commands: `trivia data sample`, `trivia data select`, `trivia eval`."""

from __future__ import annotations

import asyncio
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table as RichTable

from trivia.cli import app, data_app
from trivia.cli._common import (
    PAPER_SAMPLING,
    AbortAfter,
    Invalid,
    MinP,
    ProbeFor,
    RecognitionOptions,
    RepetitionPenalty,
    Seed,
    Temperature,
    TopK,
    TopP,
    VlmUrl,
    choices,
    err,
    fail,
    failed_path,
    on_outcome,
    open_store,
    option_group,
    out,
    print_run,
    progress,
    sampling_params,
)
from trivia.engine.selection import Strategy as SelectionStrategy
from trivia.settings import ENGINE

if TYPE_CHECKING:
    from trivia.engine.evaluation import EvalSummary
    from trivia.engine.labelled import LabelledTable
    from trivia.engine.prediction import Prediction
    from trivia.engine.runner import RunSummary
    from trivia.engine.selection import Selection

_err = err
_out = out
_RECOGNITION = RecognitionOptions()


Strategy = choices("Strategy", SelectionStrategy)


class Normalization(StrEnum):
    markup = "markup"
    none = "none"


def _progress() -> Progress:
    return progress()


@data_app.command("sample")
@option_group
def sample_command(
    vlm_url: VlmUrl,
    images: Annotated[
        Path, typer.Option(exists=True, help="Folder of images, or a file listing one per line.")
    ],
    out: Annotated[Path, typer.Option(help="Output JSONL (resumed when it exists).")],
    k: Annotated[int, typer.Option(min=2, help="Recognitions per image.")] = 4,
    temperature: Temperature = PAPER_SAMPLING.temperature,
    top_p: TopP = PAPER_SAMPLING.top_p,
    top_k: TopK = PAPER_SAMPLING.top_k,
    min_p: MinP = PAPER_SAMPLING.min_p,
    repetition_penalty: RepetitionPenalty = PAPER_SAMPLING.repetition_penalty,
    seed: Seed = None,
    invalid: Annotated[
        Invalid,
        typer.Option(help="An invalid output scores TEDS 0 against the others, or is left out."),
    ] = Invalid.zero,
    recognition: RecognitionOptions = _RECOGNITION,
    abort_after: AbortAfter = ENGINE.abort_after,
    probe_for: ProbeFor = ENGINE.probe_for_s,
) -> None:
    """Recognise each image K times and score how consistent the outputs are (mean TEDS).

    Every sampling field is sent (a server would fill unset ones from the model's generation
    config, greedy for Qwen2.5-VL). Writes OUT, OUT's `.sanity.json` report and, for
    unreadable images, its `.failed.jsonl`. Exit 0 all done, 3 unreadable images skipped,
    1 server failures remain."""
    from trivia.engine.images import find_images
    from trivia.engine.sampling import SampleSettings, sample_images
    from trivia.llm.errors import LLMError

    paths = find_images(images)
    if not paths:
        fail(f"no images in {images}")
    r = recognition
    params = sampling_params(
        temperature, top_p, top_k, min_p, repetition_penalty, seed, r.max_tokens
    )
    settings = SampleSettings(k=k, fmt=r.fmt.value, sampling=params, invalid=invalid.value)
    client = r.vlm(vlm_url).client()
    store = open_store(out)
    unreadable = open_store(failed_path(out))
    slots = r.concurrency * len(client.stats())
    workers = max(2, 2 * math.ceil(slots / k))

    async def run() -> RunSummary:
        async with client:
            with progress() as bar:
                task = bar.add_task("sampling", total=len(paths))
                return await sample_images(
                    client,
                    paths,
                    store,
                    settings,
                    unreadable=unreadable,
                    workers=workers,
                    on_outcome=on_outcome(bar, task),
                    model_revision=r.model_revision,
                    abort_after=abort_after,
                    probe_for_s=probe_for,
                )

    try:
        summary = asyncio.run(run())
    except LLMError as exc:
        fail(str(exc))
    finally:
        store.close()
        unreadable.close()
    print_run(summary, "sampled", out, len(store))
    _write_sanity(out)
    raise typer.Exit(summary.exit_code)


def _write_sanity(output: Path) -> None:
    """Print the sampling sanity report and save it beside `output`."""
    from trivia.engine.sanity import sanity_report
    from trivia.engine.store import ResultStore

    with ResultStore(output) as store:
        report = sanity_report(store.records())
    path = output.with_name(output.name.removesuffix(".jsonl") + ".sanity.json")
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    invalid = ", ".join(f"{n} {reason}" for reason, n in report["invalid"].items())
    effect = report["rule_effect"]
    _err.print(
        f"sanity: {report['images']} images, {report['identical']} with all K outputs "
        f"identical ({report['identical_share']:.0%}); invalid outputs: {invalid}; "
        f"{effect['would_rise_above_floor'] + effect['would_fall_below_floor']} images would "
        f"cross the {effect['floor']:g} floor under the other --invalid rule; report: {path}"
    )
    counts = report["consistency_histogram"]["counts"]
    _err.print("consistency: " + " ".join(f"{i / 10:.1f}:{n}" for i, n in enumerate(counts)))
    for warning in report["warnings"]:
        _err.print(f"[bold red]WARNING[/bold red] {escape(warning)}")


def _histogram_table(before: list[float], after: list[float], bins: int) -> RichTable:
    from trivia.engine.selection import histogram

    counts_before = histogram(before, bins=bins)
    counts_after = histogram(after, bins=bins)
    widest = max([*counts_before, 1])
    table = RichTable(title="consistency", show_edge=False)
    table.add_column("range")
    table.add_column("before", justify="right")
    table.add_column("")
    table.add_column("selected", justify="right")
    table.add_column("")
    for i, (b, a) in enumerate(zip(counts_before, counts_after, strict=True)):
        low, high = i / bins, (i + 1) / bins
        table.add_row(
            f"{low:.1f}–{high:.1f}",
            str(b),
            "█" * round(30 * b / widest),
            str(a),
            "[green]" + "█" * round(30 * a / widest) + "[/green]",
        )
    return table


def _print_counts(selection: Selection, low: float, high: float) -> None:
    _out.print(
        f"{selection.total} images: {selection.below} below {low:g}, {selection.above} above "
        f"{high:g}, {selection.in_range} in range; {len(selection.records)} selected"
    )
    if len(selection.available) > 1:
        width = (high - low) / len(selection.available)
        parts = [
            f"{low + i * width:.2f}–{low + (i + 1) * width:.2f}: {t}/{a}"
            for i, (a, t) in enumerate(zip(selection.available, selection.taken, strict=True))
        ]
        _out.print("per bin (taken/available): " + ", ".join(parts))


@data_app.command("select")
def select_command(
    samples: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Output of `trivia data sample`.")
    ],
    out: Annotated[Path, typer.Option(help="Selected records (JSONL, same format).")],
    n: Annotated[int, typer.Option("--n", min=0, help="How many images to keep.")],
    strategy: Annotated[
        Strategy, typer.Option(help="paper: uniform over bins above the floor; band: a range.")
    ] = Strategy.paper,
    low: Annotated[
        float | None, typer.Option(help="Lowest consistency kept (paper 0.4, band 0.5).")
    ] = None,
    high: Annotated[
        float | None, typer.Option(help="Highest consistency kept (paper 1.0, band 0.9).")
    ] = None,
    bins: Annotated[int, typer.Option(min=1, help="Equal-width bins (paper rule).")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Keep images by consistency: the paper's rule or a plain band; print the histograms.

    One record per image: when an image has several (two sample runs in one file), the latest
    counts. Reads the file in one pass, holding an index rather than the records."""
    from trivia.engine.select_file import select_file
    from trivia.engine.selection import SelectionRule

    try:
        rule = SelectionRule(strategy.value, n=n, low=low, high=high, bins=bins, seed=seed)
        chosen = select_file(samples, out, rule)
    except ValueError as exc:
        if "not a sample record" in str(exc):
            fail(str(exc))
        raise typer.BadParameter(str(exc)) from None
    selection = chosen.selection
    after = [float(r["consistency"]) for r in selection.records]
    _out.print(_histogram_table(chosen.consistencies, after, bins=10))
    _print_counts(selection, *rule.bounds)
    if chosen.superseded:
        _out.print(
            f"{chosen.superseded} earlier records of an image were superseded by a later one "
            "(one record per image is kept)"
        )
    _out.print(f"wrote {len(selection.records)} records to {out}")


@app.command("eval")
@option_group
def eval_command(
    dataset: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Labelled tables: PubTabNet JSONL, dataset JSONL, or a {name: {html}} JSON.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Report folder (CSV, summary, HTML).")],
    vlm_url: Annotated[
        list[str] | None,
        typer.Option("--vlm-url", help="VLM base URL; repeat or comma-separate."),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Score a {name: html} file instead."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Only PubTabNet records of this split (train, val, test)."),
    ] = None,
    normalize: Annotated[
        Normalization,
        typer.Option(help="Also score after the markup normalisation (see docs), or not."),
    ] = Normalization.markup,
    images: Annotated[
        Path | None, typer.Option(exists=True, file_okay=False, help="Folder of the images.")
    ] = None,
    recognition: RecognitionOptions = _RECOGNITION,
    processes: Annotated[
        int | None, typer.Option(min=1, help="Scoring processes (default: the CPUs).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Worst and slowest tables to list.")] = 10,
) -> None:
    """Score a model (or a predictions file) on labelled tables: TEDS and TEDS-S, raw and
    normalised, per table and overall, with an HTML report of the worst tables.

    Exit 0 all scored, 3 tables without a readable image, 1 server failures remain."""
    from trivia.engine.evaluation import (
        default_processes,
        load_predictions,
        score_predictions,
        summarise,
    )
    from trivia.engine.labelled import load_labelled
    from trivia.engine.report import write_report

    if (vlm_url is None) == (predictions is None):
        raise typer.BadParameter("give either --vlm-url or --predictions")
    try:
        tables = load_labelled(dataset, images_dir=images, split=split)
    except (ValueError, KeyError) as exc:
        fail(str(exc))
    exit_code = 0
    settings: dict[str, object] = {"dataset": str(dataset), "split": split, "normalize": normalize}
    if predictions is not None:
        try:
            found: dict = load_predictions(predictions)
        except ValueError as exc:
            fail(str(exc))
        settings["predictions"] = str(predictions)
    else:
        assert vlm_url is not None
        r = recognition
        found, run, fingerprint = _predict_with_model(tables, out / "predictions.jsonl", vlm_url, r)
        exit_code = run.exit_code
        settings |= {
            "model": fingerprint,
            "format": r.fmt.value,
            "sampling": "greedy (temperature 0, every field sent)",
            "max_tokens": r.max_tokens,
            "max_pixels": r.max_pixels,
            "min_pixels": r.min_pixels,
        }
    out.mkdir(parents=True, exist_ok=True)
    cache = open_store(out / "score_cache.jsonl")
    try:
        with progress() as bar:
            task = bar.add_task("scoring", total=len(tables))
            scores = score_predictions(
                tables,
                found,
                normalize=normalize == Normalization.markup,
                processes=processes or default_processes(),
                cache=cache,
                on_scored=lambda n: bar.advance(task, n),
            )
    finally:
        cache.close()
    summary = summarise(scores, top=top)
    paths = write_report(scores, summary, out, title=dataset.name, settings=settings)
    _print_summary(summary)
    _out.print(f"report: {paths['html']}  per table: {paths['csv']}")
    raise typer.Exit(exit_code)


def _predict_with_model(
    tables: list[LabelledTable],
    store_path: Path,
    urls: list[str],
    recognition: RecognitionOptions,
) -> tuple[dict[str, Prediction], RunSummary, dict]:
    """The model's predictions, resumed from and written to `store_path`, and the run."""
    from trivia.engine.prediction import predict
    from trivia.llm.errors import LLMError

    client = recognition.vlm(urls).client()
    store = open_store(store_path)
    unreadable = open_store(failed_path(store_path))
    workers = 2 * recognition.concurrency * len(client.stats())

    async def run() -> tuple[dict[str, Prediction], RunSummary, dict]:
        async with client:
            fingerprint = await client.model_fingerprint(recognition.model_revision)
            with progress() as bar:
                task = bar.add_task("recognising", total=len(tables))
                found, summary = await predict(
                    client,
                    tables,
                    store,
                    fmt=recognition.fmt.value,
                    max_tokens=recognition.max_tokens,
                    workers=workers,
                    unreadable=unreadable,
                    on_outcome=on_outcome(bar, task),
                    model_revision=recognition.model_revision,
                )
            return found, summary, fingerprint

    try:
        found, summary, fingerprint = asyncio.run(run())
    except LLMError as exc:
        fail(str(exc))
    finally:
        store.close()
        unreadable.close()
    print_run(summary, "recognised", store_path, summary.done + summary.skipped)
    return found, summary, fingerprint


def _print_summary(summary: EvalSummary) -> None:
    table = RichTable(title=f"{summary.scored} of {summary.tables} tables scored", show_edge=False)
    if summary.excluded:
        _err.print(
            f"[yellow]{len(summary.excluded)} tables excluded: ground truth beyond TEDS's "
            f"limits[/yellow] ({', '.join(summary.excluded[:5])})"
        )
    table.add_column("metric")
    table.add_column("mean", justify="right")
    for name, value in summary.means.items():
        table.add_row(name, "–" if value is None else f"{value:.4f}")
    _out.print(table)
    if summary.worst:
        _out.print("worst: " + ", ".join(f"{s.name} ({s.teds:.3f})" for s in summary.worst[:5]))
    if summary.slowest:
        _out.print(
            "slowest: " + ", ".join(f"{s.name} ({s.seconds:.1f} s)" for s in summary.slowest[:5])
        )
