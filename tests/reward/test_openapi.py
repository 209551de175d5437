"""Schemathesis against the live gateway's OpenAPI schema (with the token): no 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import TOKEN


def scored(stack) -> float:
    """Reward requests the gateway answered with 200 so far (from its /metrics)."""
    with stack.client() as client:
        text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith('trivia_requests_total{status="200"}'):
            return float(line.split()[-1])
    return 0.0


def test_schemathesis_finds_no_server_error(stack, stub, tmp_path):
    before = scored(stack)
    schemathesis = Path(sys.executable).with_name("schemathesis")
    stub.configure(answer="<answer>x</answer>")
    run = subprocess.run(
        [
            str(schemathesis), "run", f"{stack.url}/openapi.json",
            "-H", f"Authorization: Bearer {TOKEN}",
            "--max-examples", "25",
            "--seed", "1",
            "--checks", "all",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # Not a false pass on 401s: the token got generated requests through to be scored.
    assert scored(stack) - before >= 10
