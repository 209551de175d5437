"""Reward-service commands: `trivia gateway`, `trivia worker`, `trivia stack up`.

Options override the `TRIVIA_*` environment (see `trivia.settings`).
"""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from trivia.cli import app
from trivia.settings import DEFAULTS, Settings, split_urls

stack_app = typer.Typer(help="Run the whole reward service on this machine.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


RedisUrl = Annotated[str | None, typer.Option(help="Redis URL [env: TRIVIA_REDIS_URL].")]
QaUrl = Annotated[
    list[str] | None,
    typer.Option(help="OpenAI-compatible QA base URL; repeat or comma-separate for several."),
]


@app.command("gateway")
def gateway_command(
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
    redis_url: RedisUrl = None,
) -> None:
    """Serve the reward gateway (FastAPI on uvicorn)."""
    import uvicorn

    from trivia.reward.app import create_app

    settings = _settings(host=host, port=port, redis_url=redis_url)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        # SIGTERM: stop accepting, finish the requests in flight (a step's rewards), then exit.
        timeout_graceful_shutdown=math.ceil(settings.drain_s),
    )


@app.command("worker")
def worker_command(
    redis_url: RedisUrl = None,
    qa_url: QaUrl = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics, /healthz, /readyz here; 0 = off.")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Queue name.")] = None,
    burst: Annotated[bool, typer.Option("--burst", help="Exit when the queue is empty.")] = False,
) -> None:
    """Run one reward worker: scores table jobs from the queue until stopped."""
    from trivia.reward.worker import run_worker

    urls = split_urls(qa_url) if qa_url else None
    settings = _settings(
        redis_url=redis_url, qa_urls=urls, worker_metrics_port=metrics_port, queue_name=queue
    )
    run_worker(settings, burst=burst)


@stack_app.command("up")
def stack_up_command(
    port: Annotated[
        int, typer.Option(help="Gateway port; others follow it (see below).")
    ] = DEFAULTS.port,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = DEFAULTS.workers,
    qa_url: QaUrl = None,
    qa: Annotated[
        str | None, typer.Option(help="`lookup`: run the local lookup answerer as the QA service.")
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Use this Redis instead of starting valkey-server.")
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Valkey's AOF and the children's logs.")
    ] = DEFAULTS.data_dir,
) -> None:
    """Start Redis (valkey), the QA answerer, workers and the gateway; stop all on Ctrl-C.

    Ports from the gateway's port P: lookup answerer P+1, valkey P+2, worker i metrics P+10+i.
    """
    from trivia.reward.stack import Stack, StackConfig

    if qa not in (None, "lookup"):
        raise typer.BadParameter("the only local answerer is `lookup`", param_hint="--qa")
    if (qa is None) == (not qa_url):
        raise typer.BadParameter("give exactly one of --qa-url and --qa lookup")
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    config = StackConfig(
        port=port,
        workers=workers,
        qa_urls=split_urls(qa_url),
        qa_lookup=qa == "lookup",
        redis_url=redis_url,
        data_dir=data_dir,
    )
    stack = Stack(config, say=lambda line: typer.echo(line, err=True))
    try:
        stack.start()
        for line in stack.describe():
            typer.echo(line)
        typer.echo(
            f"ready: {stack.gateway_url}",
        )
        stack.supervise(lambda: stopping)
    finally:
        typer.echo("stopping", err=True)
        stack.stop()
