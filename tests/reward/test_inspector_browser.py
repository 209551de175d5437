"""The inspector in a real browser: Debian's headless chromium against the running stack.

After scoring a batch (a GRPO group of a PubTabNet table, and a group of hostile completions),
a person signs in with the keyboard, opens the request and its items; the test checks what
they see (every cell of the completion rendered, questions and F1 values visible), that no
console error appears, and that a hostile completion runs nothing: no dialog, no request to
anywhere but the gateway. Screenshots are kept under `runs/test-artifacts/inspector/` (or
`$TRIVIA_TEST_ARTIFACTS/inspector/`).
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import random
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.chromium import Page, browser

from trivia.dataset.qa_from_table import qa_from_table
from trivia.ports import free_port_block
from trivia.tables import html_to_otsl

from .conftest import AUTH, TOKEN
from .test_inspector_pages import request_links

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TRIVIA_TEST_ARTIFACTS", REPO / "runs" / "test-artifacts"))
SAMPLE = "PMC2915972_003_00.png"


class Canary:
    """An HTTP server that counts every request: a hostile page that loads or fetches anything
    from it has executed (or loaded) something."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canary.hits.append(self.path)
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port_block(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    with Canary() as server:
        yield server


def hostile(canary: str) -> list[str]:
    """Valid HTML tables (so they reach the QA model) that try to run or load something."""
    return [
        "<table><tr><td>Name<script>alert('script')</script></td>"
        "<td onmouseover=\"alert('handler')\">Age</td></tr>"
        f"<tr><td>Bob<img src=x onerror=\"fetch('{canary}/onerror')\"></td>"
        f'<td>42<svg onload="alert(\'svg\')"><image href="{canary}/svg.png"/></svg></td></tr>'
        "</table>",
        f"<table><tr><td><a href=\"javascript:alert('link')\">Name</a>"
        f'<iframe src="{canary}/iframe"></iframe></td>'
        f"<td><style>@import url({canary}/style.css);</style>Age</td></tr>"
        f'<tr><td><img src="{canary}/img.png">Bob</td>'
        f'<td><object data="{canary}/object"></object>42</td></tr></table>',
    ]


def _cells(otsl: str) -> int:
    return otsl.count("<fcel>") + otsl.count("<ecel>")


def _change(otsl: str, old: str, new: str) -> str:
    assert old in otsl
    return otsl.replace(old, new, 1)


def test_a_person_reads_a_scored_batch_and_nothing_hostile_runs(stack, canary):
    gt = json.loads((REPO / "examples/pubtabnet/sample_gt.json").read_text())
    html = gt[SAMPLE]["html"]
    otsl = html_to_otsl(html)
    pairs = qa_from_table(html, max_questions=6)
    changed = _change(otsl, f"<fcel>{pairs[0]['answer']}", "<fcel>0.00")
    step = random.randrange(10**6, 10**9)
    group = [otsl, changed, otsl, otsl[: len(otsl) // 2]]
    items = [{"id": f"table-{g}", "completion": c, "qa_pairs": pairs} for g, c in enumerate(group)]
    hostile_pairs = [{"question": "What is the Age of Bob?", "answer": "42"}]
    items += [
        {"id": f"hostile-{h}", "completion": c, "qa_pairs": hostile_pairs}
        for h, c in enumerate(hostile(canary.url))
    ]
    with stack.client(headers={**AUTH, "X-Trivia-Step": str(step)}) as client:
        response = client.post("/v1/rewards", json={"items": items})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["qa_f1"] == 1.0 and results[1]["qa_f1"] < 1.0
    with stack.client() as client:
        request_links(client, step)  # recorded in the background, just after the response
    shots = ARTIFACTS / "inspector"
    seen = asyncio.run(_read_as_a_person(stack.url, step, pairs, _cells(otsl), shots))

    assert seen["list_rows"] == 1
    assert seen["groups"] == 2
    assert seen["rendered_cells"] == _cells(otsl)
    assert seen["table_scrolls"]  # a long table scrolls in its box, the page stays readable
    assert seen["questions_visible"] == [p["question"] for p in pairs]
    assert seen["f1_visible"] == ["1.000"] * len(pairs)
    assert seen["changed_cells"] == ["0.00"]
    assert seen["hostile_cells"] == [4, 4]
    assert seen["dialogs"] == []
    assert seen["console_errors"] == []
    assert canary.hits == []
    assert all(url.startswith(stack.url) for url in seen["requests"]), seen["requests"]
    for name in ("list", "request", "item", "compare", "hostile"):
        assert (shots / f"{name}.png").stat().st_size > 10_000


async def _read_as_a_person(
    base: str, step: int, pairs: list[dict[str, str]], cells: int, shots: Path
) -> dict[str, object]:
    seen: dict[str, object] = {}
    async with browser() as page:
        # Sign in with the keyboard: the form's token field has focus.
        await page.goto(f"{base}/inspect?step={step}")
        assert await page.evaluate("location.pathname") == "/inspect/login"
        assert await page.evaluate("document.activeElement.name") == "token"
        await page.type_text(TOKEN)
        await page.press("Enter")
        await page.wait_for_load()
        assert await page.evaluate("location.pathname + location.search") == f"/inspect?step={step}"
        seen["list_rows"] = await page.evaluate("document.querySelectorAll('tbody tr').length")
        await page.screenshot(shots / "list.png")

        # Tab to the request's link and open it with Enter.
        await _tab_to(page, "/inspect/requests/")
        await page.press("Enter")
        await page.wait_for_load()
        request_path = await page.evaluate("location.pathname")
        seen["groups"] = await page.evaluate("document.querySelectorAll('section.group').length")
        await page.screenshot(shots / "request.png")

        await page.goto(f"{base}{request_path}/items/0")
        seen["rendered_cells"] = await page.evaluate(
            "document.querySelectorAll('#qa-table td, #qa-table th').length"
        )
        seen["table_scrolls"] = await page.evaluate(
            "(e => getComputedStyle(e).overflowY === 'auto' && e.scrollHeight > e.clientHeight)"
            "(document.getElementById('qa-table'))"
        )
        seen["questions_visible"] = await _visible_column(page, 0)
        seen["f1_visible"] = await _visible_column(page, 4)
        await page.screenshot(shots / "item.png")

        await page.goto(f"{base}{request_path}/items/0?compare=1")
        seen["changed_cells"] = await page.evaluate(
            "[...document.querySelectorAll('#diff-table-other .changed')].map(c => c.innerText)"
        )
        await page.screenshot(shots / "compare.png")

        hostile_cells = []
        for index in (4, 5):
            await page.goto(f"{base}{request_path}/items/{index}")
            # Hover and focus every cell: handlers that survived would fire now.
            await page.evaluate(
                "document.querySelectorAll('#qa-table *').forEach(e => {"
                "e.dispatchEvent(new MouseEvent('mouseover', {bubbles: true})); e.click?.();})"
            )
            hostile_cells.append(
                await page.evaluate("document.querySelectorAll('#qa-table td').length")
            )
        await page.screenshot(shots / "hostile.png")
        seen["hostile_cells"] = hostile_cells
        await page.evaluate("new Promise(r => setTimeout(r, 300))")  # late loads, timers
        seen["dialogs"] = list(page.dialogs)
        seen["console_errors"] = list(page.console_errors)
        seen["requests"] = list(page.requests)
    return seen


async def _tab_to(page: Page, href_part: str) -> None:
    for _ in range(40):
        await page.press("Tab")
        href = await page.evaluate("document.activeElement.getAttribute('href') || ''")
        if href_part in href:
            return
    raise AssertionError(f"no link to {href_part} reachable with Tab")


async def _visible_column(page: Page, column: int) -> list[str]:
    """The text of one column of the answers table, from the cells a person can see."""
    return await page.evaluate(
        f"[...document.querySelectorAll('#answers tbody tr')].map(r => r.cells[{column}])"
        ".filter(c => c.checkVisibility() && c.getBoundingClientRect().width > 0)"
        ".map(c => c.innerText.trim())"
    )


def test_the_harness_sees_a_dialog_and_a_request_when_a_page_runs_script(canary):
    """The checks above can fail: a page that does run script is caught by both."""
    page_html = f"<script>alert('ran'); fetch('{canary.url}/ran');</script>"

    async def visit() -> tuple[list[str], list[str]]:
        async with browser() as page:
            await page.goto("data:text/html," + page_html)
            await page.evaluate("new Promise(r => setTimeout(r, 300))")
            return page.dialogs, page.requests

    dialogs, requests = asyncio.run(visit())
    assert dialogs == ["ran"]
    assert any(re.search(r"/ran$", url) for url in requests)


def test_the_pages_policy_blocks_what_would_slip_past_the_sanitiser(stack, canary):
    """The second lock: markup inserted into an inspector page neither runs nor loads."""
    inject = (
        "document.body.insertAdjacentHTML('beforeend', "
        f'\'<img src="{canary.url}/img.png"><iframe src="{canary.url}/frame"></iframe>'
        f'<link rel=stylesheet href="{canary.url}/style.css">\');'
        "const s = document.createElement('script');"
        f"s.textContent = \"alert('inline'); fetch('{canary.url}/fetch')\";"
        "document.body.append(s);"
        "new Promise(r => setTimeout(r, 300))"
    )

    async def visit() -> Page:
        async with browser() as page:
            await page.goto(f"{stack.url}/inspect/login")
            await page.evaluate(inject)
            return page

    page = asyncio.run(visit())
    assert page.dialogs == []
    assert canary.hits == []
    refused = [e for e in page.console_errors if "Content Security Policy" in e]
    assert len(refused) >= 3, page.console_errors
