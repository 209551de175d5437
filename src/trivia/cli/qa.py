"""Answering-service commands: `trivia qa serve`, `trivia qa ask`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from trivia.cli import app
from trivia.settings import DEFAULTS

qa_app = typer.Typer(help="Answer questions about tables (the QA side of the reward).")
app.add_typer(qa_app, name="qa")


Host = Annotated[str, typer.Option(help="Listen address.")]


@qa_app.command("serve")
def serve_command(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8001,
    model: Annotated[str | None, typer.Option(help="Model name to serve as.")] = None,
) -> None:
    """Serve the lookup answerer (finds the asked cell; a heuristic, no LLM) over the OpenAI API."""
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
    timeout: Annotated[
        float, typer.Option(help="Seconds per attempt.")
    ] = DEFAULTS.qa_request_timeout_s,
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
