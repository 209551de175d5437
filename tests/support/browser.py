"""Headless Debian chromium for the pages a person reads: a screenshot and the console's lines."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Rendered", "chromium", "render"]

_CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]? (.*)")


@dataclass(frozen=True)
class Rendered:
    """What chromium made of a page: its screenshot and every console message it logged."""

    screenshot: Path
    console: list[str]


def chromium() -> str | None:
    """The chromium binary, or None where it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render(page: str, screenshot: Path, *, width: int = 1280, height: int = 2000) -> Rendered:
    """Load `page` (a URL or a file path) in headless chromium; a screenshot and the console.

    Console messages (errors, uncaught exceptions, failed loads) come from chromium's own log
    (`--enable-logging=stderr --v=1`), one line per message.
    """
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    url = page if "://" in page else Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=1",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--screenshot={screenshot}",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    console = [m.group(1) for line in result.stderr.splitlines() if (m := _CONSOLE.search(line))]
    if not screenshot.exists():
        raise RuntimeError(f"chromium made no screenshot: {result.stderr[-2000:]}")
    return Rendered(screenshot, console)
