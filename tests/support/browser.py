"""Headless Debian chromium for the pages a person reads: a screenshot and the console's lines."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from tests.support.chromium import browser

__all__ = ["Rendered", "render"]


@dataclass(frozen=True)
class Rendered:
    """What chromium made of a page: its screenshot and every console message it logged."""

    screenshot: Path
    console: list[str]


def render(page: str, screenshot: Path, *, width: int = 1280, height: int = 2000) -> Rendered:
    """Load `page` (a URL or a file path) in headless chromium; a screenshot and the console.

    Console messages are every console call, uncaught exception and browser log entry (failed
    loads among them), as `chromium.Page.console` records them over DevTools.
    """
    url = page if "://" in page else Path(page).resolve().as_uri()

    async def run() -> list[str]:
        async with browser(width, height) as tab:
            await tab.goto(url)
            await tab.screenshot(screenshot)
            return list(tab.console)

    return Rendered(screenshot, asyncio.run(run()))
