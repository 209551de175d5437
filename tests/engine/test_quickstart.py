"""The quick start in docs/data-engine.md runs as written, and its review pages render cleanly."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.browser import render

from trivia.dataset import validate_jsonl

ROOT = Path(__file__).resolve().parents[2]


def _block() -> str:
    text = (ROOT / "docs" / "data-engine.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- quickstart -->\n```bash\n(.*?)```", text, re.S)
    assert match, "docs/data-engine.md has no quick start block"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_documented_quick_start_runs_and_its_review_renders(tmp_path):
    out = tmp_path / "quickstart"
    env = os.environ | {
        "PORT": str(_free_port()),
        "OUT": str(out),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    script = "set -euo pipefail\n" + _block()
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sanity = json.loads((out / "samples.sanity.json").read_text())
    assert sanity["images"] == 20 and not sanity["warnings"]
    assert sanity["identical"] < 20  # real sampling, not the server's greedy defaults
    report = validate_jsonl(out / "dataset.jsonl")
    assert report.ok and report.good_rows > 0
    assert (out / "dataset.rejected.jsonl").stat().st_size > 0

    index = render(str(out / "review.html"), tmp_path / "index.png")
    assert index.console == []
    pages = sorted((out / "review_pages").glob("*.html"))
    assert len(pages) == 12
    # Which image keeps or loses which question varies with the run; across the pages, some
    # answering cell is highlighted and some rejection gives its reason.
    texts = {page: page.read_text(encoding="utf-8") for page in pages}
    highlighted = [page for page, text in texts.items() if 'class="answer"' in text]
    assert highlighted, "no review page highlights an answering cell"
    assert any('class="reason"' in text for text in texts.values()), "no page shows a rejection"
    shown = render(str(highlighted[0]), tmp_path / "page.png", height=1600)
    assert shown.console == []
