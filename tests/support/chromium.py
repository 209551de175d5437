"""Debian's headless `chromium`, driven over the DevTools protocol, for tests of pages.

`browser()` starts chromium on a free DevTools port with a throw-away profile and yields a
`Page`: it navigates, evaluates, types, takes screenshots, and records what a test must see
did not happen: console errors, uncaught exceptions, JavaScript dialogs (`alert`), and every
network request the page made.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["Page", "browser", "chromium_path"]

_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_path() -> str | None:
    """The chromium binary, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Page:
    """One tab, with the events a test asserts on."""

    ws: aiohttp.ClientWebSocketResponse
    #: Every message the page logged: console calls, uncaught exceptions, the browser's entries.
    console: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _loaded: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (raises on a protocol error)."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self._loaded.clear()
        await self.send("Page.navigate", url=url)
        await self.wait_for_load()

    async def wait_for_load(self) -> None:
        """Wait for the navigation a click or key press started."""
        await asyncio.wait_for(self._loaded.wait(), 60)
        self._loaded.clear()

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools runs it despite CSP)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def type_text(self, text: str) -> None:
        await self.send("Input.insertText", text=text)

    async def press(self, key: str) -> None:
        """A key press as a person makes it (`Tab`, `Enter`)."""
        codes = {"Enter": 13, "Tab": 9}
        common = {"key": key, "code": key, "windowsVirtualKeyCode": codes[key]}
        text = {"text": "\r"} if key == "Enter" else {}
        await self.send("Input.dispatchKeyEvent", type="keyDown", **common, **text)
        await self.send("Input.dispatchKeyEvent", type="keyUp", **common)

    async def screenshot(self, path: Path) -> None:
        """A PNG of the whole page."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value")) for a in params["args"])
            self._log(text, error=params["type"] in ("error", "assert"))
        elif method == "Runtime.exceptionThrown":
            self._log(params["exceptionDetails"].get("text", "exception"), error=True)
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self._log(f"{entry.get('url', '')}: {entry['text']}", error=entry["level"] == "error")
        elif method == "Page.javascriptDialogOpening":
            self.dialogs.append(params["message"])
            asyncio.get_running_loop().create_task(
                self.send("Page.handleJavaScriptDialog", accept=False)
            )
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])

    def _log(self, text: str, *, error: bool) -> None:
        self.console.append(text)
        if error:
            self.console_errors.append(text)

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self._event(data["method"], data.get("params", {}))


@contextlib.asynccontextmanager
async def browser(width: int = 1280, height: int = 860) -> AsyncIterator[Page]:
    """A headless chromium (as root: `--no-sandbox`) and one page, closed afterwards."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update",
            "--remote-debugging-port=0", f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "about:blank",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            endpoint = await _devtools_endpoint(process)
            async with aiohttp.ClientSession() as session:
                port = endpoint.split(":")[2].split("/")[0]
                async with session.get(f"http://127.0.0.1:{port}/json/list") as listing:
                    targets = await listing.json()
                target = next(t for t in targets if t["type"] == "page")
                async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    page = Page(ws)
                    reader = asyncio.create_task(page._read())
                    try:
                        for domain in ("Page", "Runtime", "Log", "Network"):
                            await page.send(f"{domain}.enable")
                        await page.send(
                            "Emulation.setDeviceMetricsOverride",
                            width=width, height=height, deviceScaleFactor=1, mobile=False,
                        )  # fmt: skip
                        yield page
                    finally:
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reader
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _devtools_endpoint(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    lines = []
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), 60)
        if not line:
            raise RuntimeError("chromium exited:\n" + "".join(lines))
        text = line.decode(errors="replace")
        lines.append(text)
        match = _LISTENING.search(text)
        if match:
            # Keep reading stderr so chromium never blocks on a full pipe.
            asyncio.get_running_loop().create_task(_drain(process.stderr))
            return match.group(1)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
