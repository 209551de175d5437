"""Data-engine commands: `trivia data sample`, `trivia data select`, `trivia eval`."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable

from trivia.cli import app, data_app
from trivia.engine.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS

if TYPE_CHECKING:
    from trivia.engine.evaluation import EvalSummary, Prediction
    from trivia.engine.labelled import LabelledTable
    from trivia.engine.sampling import SampleSummary
    from trivia.engine.selection import Selection
    from trivia.engine.vlm import VLMClient

_err = Console(stderr=True, soft_wrap=True)
_out = Console(soft_wrap=True)


class Format(StrEnum):
    otsl = "otsl"
    html = "html"


class Strategy(StrEnum):
    paper = "paper"
    band = "band"


class Normalization(StrEnum):
    omnidocbench = "omnidocbench"
    none = "none"


VlmUrl = Annotated[
    list[str],
    typer.Option(
        "--vlm-url", help="OpenAI-compatible base URL of the VLM; repeat or comma-separate."
    ),
]
Model = Annotated[str | None, typer.Option(help="Model name (default: from /v1/models).")]
ApiKey = Annotated[
    str | None, typer.Option(envvar="TRIVIA_VLM_API_KEY", help="Bearer token.", show_default=False)
]
Concurrency = Annotated[int, typer.Option(min=1, help="Requests at once per endpoint.")]
MaxTokens = Annotated[int, typer.Option(min=1, help="Longest output, in tokens.")]
TableFmt = Annotated[Format, typer.Option("--format", help="Ask for OTSL or HTML.")]
MaxPixels = Annotated[
    int, typer.Option(min=784, help="Pixel limit as in training (ms-swift MAX_PIXELS).")
]
MinPixels = Annotated[
    int, typer.Option(min=784, help="Pixel floor as in training (ms-swift MIN_PIXELS).")
]
Timeout = Annotated[float, typer.Option(help="Seconds per request attempt.")]


@dataclass(frozen=True, slots=True)
class VLMOptions:
    """How to reach the VLM: the options `sample` and `eval` share."""

    urls: list[str]
    model: str | None
    api_key: str | None
    concurrency: int
    timeout: float
    max_pixels: int
    min_pixels: int

    def client(self) -> VLMClient:
        from trivia.engine.vlm import VLMClient

        try:
            return VLMClient(
                self.urls,
                model=self.model,
                api_key=self.api_key,
                max_concurrency_per_endpoint=self.concurrency,
                request_timeout_s=self.timeout,
                max_pixels=self.max_pixels,
                min_pixels=self.min_pixels,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--vlm-url") from None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_err,
    )


@data_app.command("sample")
def sample_command(
    vlm_url: VlmUrl,
    images: Annotated[
        Path, typer.Option(exists=True, help="Folder of images, or a file listing one per line.")
    ],
    out: Annotated[Path, typer.Option(help="Output JSONL (resumed when it exists).")],
    k: Annotated[int, typer.Option(min=2, help="Recognitions per image.")] = 4,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature.")] = 1.0,
    fmt: TableFmt = Format.otsl,
    concurrency: Concurrency = 16,
    max_tokens: MaxTokens = 4096,
    model: Model = None,
    api_key: ApiKey = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    min_pixels: MinPixels = DEFAULT_MIN_PIXELS,
    timeout: Timeout = 300.0,
) -> None:
    """Recognise each image K times and score how consistent the outputs are (mean TEDS)."""
    from trivia.engine.images import find_images
    from trivia.engine.sampling import SampleOutcome, SampleSettings, sample_images
    from trivia.engine.store import ResultStore, StoreLocked
    from trivia.llm.errors import LLMError

    paths = find_images(images)
    if not paths:
        _err.print(f"no images in {images}")
        raise typer.Exit(1)
    settings = SampleSettings(k=k, temperature=temperature, fmt=fmt.value, max_tokens=max_tokens)
    client = VLMOptions(
        vlm_url, model, api_key, concurrency, timeout, max_pixels, min_pixels
    ).client()
    try:
        store = ResultStore(out)
    except (StoreLocked, ValueError) as exc:
        _err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    if store.dropped_torn_line:
        _err.print(f"dropped a torn last line of {out} (an interrupted write)")
    slots = concurrency * len(client.stats())
    workers = max(2, 2 * math.ceil(slots / k))

    async def run() -> SampleSummary:
        async with client:
            with _progress() as progress:
                task = progress.add_task("sampling", total=len(paths))

                def advance(outcome: SampleOutcome) -> None:
                    progress.advance(task)
                    if outcome.status == "failed":
                        where, why = escape(str(outcome.image)), escape(outcome.error or "")
                        progress.console.print(f"[red]failed[/red] {where}: {why}")

                return await sample_images(
                    client, paths, store, settings, workers=workers, on_outcome=advance
                )

    try:
        summary = asyncio.run(run())
    except LLMError as exc:
        _err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    finally:
        store.close()
    _err.print(
        f"{summary.done} sampled, {summary.skipped} already in {out}, "
        f"{len(summary.failed)} failed; {len(store)} records"
    )
    if summary.failed:
        raise typer.Exit(1)


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
    """Keep images by consistency: the paper's rule or a plain band; print the histograms."""
    from trivia.engine.selection import select

    records = []
    for number, line in enumerate(samples.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            float(record["consistency"])
        except (ValueError, KeyError, TypeError):
            _err.print(f"{samples}:{number}: not a sample record (no consistency)")
            raise typer.Exit(1) from None
        records.append(record)
    try:
        selection = select(records, strategy.value, n=n, low=low, high=high, bins=bins, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in selection.records),
        encoding="utf-8",
    )
    before = [float(r["consistency"]) for r in records]
    after = [float(r["consistency"]) for r in selection.records]
    _out.print(_histogram_table(before, after, bins=10))
    shown_low = low if low is not None else (0.4 if strategy == Strategy.paper else 0.5)
    shown_high = high if high is not None else (1.0 if strategy == Strategy.paper else 0.9)
    _print_counts(selection, shown_low, shown_high)
    _out.print(f"wrote {len(selection.records)} records to {out}")


@app.command("eval")
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
    normalize: Annotated[
        Normalization, typer.Option(help="Also score after this normalisation.")
    ] = Normalization.omnidocbench,
    images: Annotated[
        Path | None, typer.Option(exists=True, file_okay=False, help="Folder of the images.")
    ] = None,
    fmt: TableFmt = Format.otsl,
    concurrency: Concurrency = 16,
    max_tokens: MaxTokens = 4096,
    model: Model = None,
    api_key: ApiKey = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    min_pixels: MinPixels = DEFAULT_MIN_PIXELS,
    timeout: Timeout = 300.0,
    top: Annotated[int, typer.Option(min=1, help="Worst and slowest tables to list.")] = 10,
) -> None:
    """Score a model (or a predictions file) on labelled tables: TEDS and TEDS-S, raw and
    normalised, per table and overall, with an HTML report of the worst tables."""
    from trivia.engine.evaluation import load_predictions, score_predictions, summarise
    from trivia.engine.labelled import load_labelled
    from trivia.engine.report import write_report

    if (vlm_url is None) == (predictions is None):
        raise typer.BadParameter("give either --vlm-url or --predictions")
    try:
        tables = load_labelled(dataset, images_dir=images)
    except (ValueError, KeyError) as exc:
        _err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    failures: list[str] = []
    if predictions is not None:
        try:
            found = load_predictions(predictions)
        except ValueError as exc:
            _err.print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(1) from None
    else:
        assert vlm_url is not None
        options = VLMOptions(vlm_url, model, api_key, concurrency, timeout, max_pixels, min_pixels)
        found = _predict_with_model(
            tables, out / "predictions.jsonl", options, fmt, max_tokens, failures
        )
    scores = score_predictions(tables, found, normalize=normalize == Normalization.omnidocbench)
    summary = summarise(scores, top=top)
    paths = write_report(scores, summary, out, title=f"{dataset.name}")
    _print_summary(summary)
    _out.print(f"report: {paths['html']}  per table: {paths['csv']}")
    if failures:
        _err.print(f"[red]{len(failures)} tables got no prediction[/red] (re-run to retry them)")
        raise typer.Exit(1)


def _predict_with_model(
    tables: list[LabelledTable],
    store_path: Path,
    options: VLMOptions,
    fmt: Format,
    max_tokens: int,
    failures: list[str],
) -> dict[str, Prediction | str]:
    """The model's predictions, resumed from and written to `store_path`; failures collected."""
    from trivia.engine.evaluation import predict
    from trivia.engine.store import ResultStore, StoreLocked
    from trivia.llm.errors import LLMError

    client = options.client()
    try:
        store = ResultStore(store_path)
    except (StoreLocked, ValueError) as exc:
        _err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    workers = 2 * options.concurrency * len(client.stats())

    async def run() -> dict[str, Prediction | str]:
        async with client:
            with _progress() as progress:
                task = progress.add_task("recognising", total=len(tables))

                def advance(name: str, status: str) -> None:
                    progress.advance(task)
                    if status.startswith("failed"):
                        failures.append(name)
                        progress.console.print(f"[red]{escape(name)}[/red] {escape(status)}")

                return await predict(
                    client,
                    tables,
                    store,
                    fmt=fmt.value,
                    max_tokens=max_tokens,
                    workers=workers,
                    on_outcome=advance,
                )

    try:
        return asyncio.run(run())
    except LLMError as exc:
        _err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    finally:
        store.close()


def _print_summary(summary: EvalSummary) -> None:
    table = RichTable(title=f"{summary.scored} of {summary.tables} tables scored", show_edge=False)
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
