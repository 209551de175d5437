"""What the data-engine commands share: consoles, errors, exit codes, progress, VLM options.

Exit codes of `trivia data sample|qa` and `trivia eval` (`trivia.engine.runner`):
0 all done; 3 done, with unreadable inputs skipped (listed in the `.failed.jsonl` beside the
output); 1 server failures remain (re-run to retry them) or the run was aborted; 2 bad usage.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, get_args, get_type_hints

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

from trivia.engine.consistency import InvalidRule
from trivia.engine.images import DEFAULT_MAX_PIXELS as DEFAULT_MAX_PIXELS  # re-exported
from trivia.engine.images import DEFAULT_MIN_PIXELS as DEFAULT_MIN_PIXELS  # re-exported
from trivia.engine.sampling_params import SamplingParams
from trivia.settings import ENGINE
from trivia.tables import TableFormat

if TYPE_CHECKING:
    from trivia.engine.runner import Outcome, RunSummary
    from trivia.engine.store import ResultStore
    from trivia.engine.vlm import VLMClient

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
#: The sampling defaults of the options: the paper's plain temperature sampling.
PAPER_SAMPLING = SamplingParams()


def choices(name: str, values: Any) -> Any:
    """A typer choice (typer takes enums, not `Literal`s) over the values of a `Literal` or the
    keys of a table, which stay their one definition."""
    return StrEnum(name, [(value, value) for value in (get_args(values) or values)])


Format = choices("Format", TableFormat)
Invalid = choices("Invalid", InvalidRule)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` in red on stderr and exit with `code`."""
    err.print(f"[red]{escape(message)}[/red]")
    raise typer.Exit(code)


def progress() -> Progress:
    """The progress bar every long data-engine job shows (on stderr)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


def failed_path(output: Path) -> Path:
    """Where unreadable inputs are recorded: `NAME.failed.jsonl` beside `NAME.jsonl`."""
    return output.with_name(output.name.removesuffix(".jsonl") + ".failed.jsonl")


def open_store(path: Path) -> ResultStore:
    """A `ResultStore` on `path`, or exit 1 saying why not (locked, not a store file)."""
    from trivia.engine.store import ResultStore, StoreLocked

    try:
        store = ResultStore(path)
    except (StoreLocked, ValueError) as exc:
        fail(str(exc))
    if store.dropped_torn_line:
        err.print(f"dropped a torn last line of {path} (an interrupted write)")
    return store


def on_outcome(bar: Progress, task: object) -> Callable[[Outcome], None]:
    """The runner callback: advance the bar, print failures and unreadable inputs."""

    def advance(outcome: Outcome) -> None:
        bar.advance(task)  # type: ignore[arg-type]
        if outcome.status in ("failed", "unreadable"):
            colour = "red" if outcome.status == "failed" else "yellow"
            bar.console.print(
                f"[{colour}]{outcome.status}[/{colour}] {escape(outcome.name)}: "
                f"{escape(outcome.error or '')}"
            )

    return advance


def print_run(summary: RunSummary, what: str, output: Path, records: int) -> None:
    """One line of counts, the abort reason if any, and where unreadable inputs are listed."""
    err.print(
        f"{summary.done} {what}, {summary.skipped} already in {output}, "
        f"{len(summary.failed)} failed, {len(summary.unreadable)} unreadable; {records} records"
    )
    if summary.unreadable:
        err.print(f"[yellow]unreadable inputs are listed in {failed_path(output)}[/yellow]")
    if summary.failed:
        err.print(f"[red]{len(summary.failed)} failed on the server side[/red] (re-run to retry)")
    if summary.aborted:
        err.print(f"[red]{escape(summary.aborted)}[/red]")


VlmUrl = Annotated[
    list[str],
    typer.Option(
        "--vlm-url", help="OpenAI-compatible base URL of the VLM; repeat or comma-separate."
    ),
]
Model = Annotated[str | None, typer.Option(help="Model name (default: from /v1/models).")]
ModelRevision = Annotated[
    str | None,
    typer.Option(help="Checkpoint revision, part of the resume key (besides /v1/models' card)."),
]
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
AbortAfter = Annotated[
    int,
    typer.Option(min=1, help="Failed items in a row before pausing to probe the server."),
]
ProbeFor = Annotated[
    float, typer.Option(min=0.0, help="Seconds to wait for a failed server before aborting.")
]
Temperature = Annotated[float, typer.Option(min=0.0, help="Sampling temperature.")]
TopP = Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling (1: off).")]
TopK = Annotated[int, typer.Option(min=-1, help="Top-k sampling (-1: off).")]
MinP = Annotated[float, typer.Option(min=0.0, max=1.0, help="Min-p sampling (0: off).")]
RepetitionPenalty = Annotated[float, typer.Option(min=0.0, help="Repetition penalty (1: off).")]
Seed = Annotated[
    int | None, typer.Option(help="Base seed; each call gets one derived from it (default: none).")
]


def sampling_params(
    temperature: float,
    top_p: float,
    top_k: int,
    min_p: float,
    repetition_penalty: float,
    seed: int | None,
    max_tokens: int,
    option: str = "--temperature",
) -> SamplingParams:
    """The options as `SamplingParams`, or a usage error naming what is wrong."""
    try:
        return SamplingParams(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            min_p=min_p,
            repetition_penalty=repetition_penalty,
            seed=seed,
            max_tokens=max_tokens,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@dataclass(frozen=True, slots=True)
class VLMOptions:
    """How to reach a VLM: the options `sample`, `qa` and `eval` share."""

    urls: list[str]
    model: str | None
    api_key: str | None
    concurrency: int
    timeout: float
    max_pixels: int
    min_pixels: int

    def client(self, option: str = "--vlm-url") -> VLMClient:
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
            raise typer.BadParameter(str(exc), param_hint=option) from None


C = TypeVar("C", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class RecognitionOptions:
    """How `sample` and `eval` ask a VLM to recognise tables (see `option_group`)."""

    fmt: TableFmt = Format.otsl
    concurrency: Concurrency = ENGINE.vlm_concurrency_per_endpoint
    max_tokens: MaxTokens = PAPER_SAMPLING.max_tokens
    model: Model = None
    model_revision: ModelRevision = None
    api_key: ApiKey = None
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS
    min_pixels: MinPixels = DEFAULT_MIN_PIXELS
    timeout: Timeout = ENGINE.vlm_request_timeout_s

    def vlm(self, urls: list[str]) -> VLMOptions:
        """The options that reach the VLM at `urls`."""
        return VLMOptions(
            urls,
            self.model,
            self.api_key,
            self.concurrency,
            self.timeout,
            self.max_pixels,
            self.min_pixels,
        )


def option_group(command: C) -> C:
    """Spread a command's dataclass parameter into one option per field (typer has no option
    groups), in its place; the command receives the dataclass built from them."""
    signature = inspect.signature(command, eval_str=True)
    groups = {
        name: param.annotation
        for name, param in signature.parameters.items()
        if isinstance(param.annotation, type) and hasattr(param.annotation, "__dataclass_fields__")
    }
    spread: list[inspect.Parameter] = []
    members: dict[str, list[str]] = {}
    for param in signature.parameters.values():
        group = groups.get(param.name)
        if group is None:
            spread.append(param)
            continue
        hints = get_type_hints(group, include_extras=True)
        members[param.name] = [field.name for field in fields(group)]
        spread += [
            param.replace(name=field.name, annotation=hints[field.name], default=field.default)
            for field in fields(group)
        ]

    @functools.wraps(command)
    def run(**options: Any) -> Any:
        for name, names in members.items():
            options[name] = groups[name](**{field: options.pop(field) for field in names})
        return command(**options)

    run.__signature__ = signature.replace(parameters=spread)  # type: ignore[attr-defined]
    run.__annotations__ = {param.name: param.annotation for param in spread}
    return run  # type: ignore[return-value]
