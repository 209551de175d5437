"""Answering-service commands: `trivia qa serve`, `trivia qa stub`, `trivia qa ask`."""

from __future__ import annotations

import asyncio
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from trivia.cli import app

qa_app = typer.Typer(help="Answer questions about tables (the QA side of the reward).")
app.add_typer(qa_app, name="qa")


class Answerer(StrEnum):
    lookup = "lookup"


class Failure(StrEnum):
    none = "none"
    http_400 = "400"
    http_429 = "429"
    http_500 = "500"
    http_503 = "503"
    hang = "hang"
    close = "close"


Host = Annotated[str, typer.Option(help="Listen address.")]


@qa_app.command("serve")
def serve_command(
    answerer: Annotated[
        Answerer, typer.Option(help="What answers: `lookup` finds the cell (a heuristic, no LLM).")
    ] = Answerer.lookup,
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8001,
    model: Annotated[str | None, typer.Option(help="Model name to serve as.")] = None,
) -> None:
    """Serve an OpenAI-compatible answering API (FastAPI on uvicorn)."""
    import uvicorn

    from trivia.qa.server import LOOKUP_MODEL, create_app

    uvicorn.run(
        create_app(model or LOOKUP_MODEL),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


@qa_app.command("stub")
def stub_command(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port; 0 picks a free one.")] = 0,
    latency: Annotated[float, typer.Option(help="Seconds each call takes.")] = 0.0,
    slots: Annotated[int, typer.Option(help="Calls served at once; 0 = no limit.")] = 0,
    failure: Annotated[Failure, typer.Option(help="Fail calls on purpose.")] = Failure.none,
    fail_first: Annotated[
        int | None, typer.Option(help="Fail only the first N calls (default: every call).")
    ] = None,
    answer: Annotated[
        str | None, typer.Option(help="Fixed reply (default: the lookup answerer's).")
    ] = None,
) -> None:
    """Serve the scriptable OpenAI stub used by tests and benchmarks (prints its URL)."""
    from trivia.testing.openai_stub import StubConfig, serve_forever

    config = StubConfig(
        latency_s=latency,
        slots=slots,
        failure=failure.value,  # type: ignore[arg-type]
        fail_first=fail_first,
        answer=answer,
    )
    serve_forever(config, host, port)


@qa_app.command("ask")
def ask_command(
    qa_url: Annotated[
        list[str], typer.Option(help="OpenAI-compatible base URL; repeat or comma-separate.")
    ],
    table: Annotated[Path, typer.Option(help="File with the table (HTML or OTSL); - = stdin.")],
    question: Annotated[list[str], typer.Option(help="A question; repeat for several.")],
    model: Annotated[str | None, typer.Option(help="Model (default: from /v1/models).")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="TRIVIA_QA_API_KEY", help="Bearer token.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per attempt.")] = 60.0,
) -> None:
    """Ask questions about one table and print each raw reply (one per line, in order)."""
    from trivia.qa.client import QAClient

    text = sys.stdin.read() if str(table) == "-" else table.read_text(encoding="utf-8")

    async def run() -> list[str | Exception]:
        async with QAClient(
            qa_url, model=model, api_key=api_key, request_timeout_s=timeout
        ) as client:
            return list(await client.answer_many(text, question))

    failed = False
    for q, reply in zip(question, asyncio.run(run()), strict=True):
        if isinstance(reply, Exception):
            failed = True
            typer.echo(f"{q}\tERROR {reply}", err=True)
        else:
            typer.echo(f"{q}\t{reply}")
    if failed:
        raise typer.Exit(1)
