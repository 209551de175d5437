"""The inspector's pages on the running stack: sign-in, list, request, item, headers, errors."""

from __future__ import annotations

import random
import re
import time

import httpx
import lxml.html
import pytest

from trivia.reward.inspector.pages import CSP
from trivia.reward.inspector.session import COOKIE

from .conftest import AUTH, TOKEN, unique

OTSL = "<fcel>Name<fcel>Age<nl>\n<fcel>Bob<fcel>42<nl>\n"


def _score(stack, items, step: int | None) -> None:
    headers = {**AUTH, **({"X-Trivia-Step": str(step)} if step is not None else {})}
    with stack.client(headers=headers) as client:
        response = client.post("/v1/rewards", json={"items": items})
    assert response.status_code == 200, response.text


def request_links(client: httpx.Client, step: int) -> list[str]:
    """Request page links of `step`, waiting for the recording (it runs after the response)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = client.get("/inspect", params={"step": step})
        assert page.status_code == 200
        links = re.findall(r'href="(/inspect/requests/[0-9a-f]{16})"', page.text)
        if links:
            return links
    raise AssertionError(f"no request of step {step} recorded")


@pytest.fixture(scope="module")
def scored(stack):
    """One recorded request with a GRPO group of three, one lone item, and its step."""
    step = random.randrange(10**6, 10**9)
    pairs = [{"question": unique("What is Bob's age?"), "answer": "42"}]
    items = [
        {"id": "first", "completion": OTSL, "qa_pairs": pairs},
        {"id": "second", "completion": OTSL.replace("42", "24"), "qa_pairs": pairs},
        {"id": "cut", "completion": OTSL[:-4], "qa_pairs": pairs},
        {"id": "lone", "completion": OTSL},
    ]
    _score(stack, items, step)
    with stack.client() as client:
        (link,) = request_links(client, step)
    return step, link, pairs


def test_pages_without_a_session_redirect_to_the_sign_in_form(stack, scored):
    _, link, _ = scored
    with stack.client(headers={}) as client:
        for path in ("/inspect", link, f"{link}/items/0", "/inspect?step=1"):
            response = client.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/inspect/login?next=%2Finspect")
        form = client.get("/inspect/login", params={"next": link})
    assert form.status_code == 200
    doc = lxml.html.fromstring(form.text)
    assert doc.xpath("//form[@method='post']//input[@type='password' and @name='token']")
    assert doc.xpath("//input[@name='next']/@value") == [link]
    assert not doc.xpath("//form[@action='/inspect/logout']")


def test_signing_in_sets_an_httponly_cookie_that_opens_the_pages(stack, scored):
    _, link, _ = scored
    with stack.client(headers={}) as client:
        wrong = client.post("/inspect/login", data={"token": "wrong", "next": link})
        assert wrong.status_code == 401 and COOKIE not in wrong.cookies
        right = client.post("/inspect/login", data={"token": TOKEN, "next": link})
        assert right.status_code == 303 and right.headers["location"] == link
        cookie = right.headers["set-cookie"]
        assert TOKEN not in cookie
        for attribute in ("HttpOnly", "Path=/inspect", "SameSite=lax", "Max-Age=43200"):
            assert attribute in cookie
        assert client.get(link).status_code == 200
        assert client.post("/inspect/logout").status_code == 303
        assert client.get(link).status_code == 303


@pytest.mark.parametrize("target", ["https://example.com/", "//example.com/x", "/v1/rewards"])
def test_sign_in_never_redirects_off_the_inspector(stack, target):
    with stack.client(headers={}) as client:
        response = client.post("/inspect/login", data={"token": TOKEN, "next": target})
    assert response.headers["location"] == "/inspect"


def test_a_forged_or_expired_cookie_is_refused(stack, scored):
    _, link, _ = scored
    for value in ("9999999999.deadbeef", "1.0", "garbage", ""):
        with stack.client(headers={}, cookies={COOKIE: value}) as client:
            assert client.get(link).status_code == 303


def test_every_page_has_the_strict_content_security_policy(stack, scored):
    _, link, _ = scored
    with stack.client() as client:
        for path in ("/inspect", link, f"{link}/items/0", "/inspect/login", "/inspect/nope"):
            response = client.get(path)
            assert response.headers["content-security-policy"] == CSP, path
            assert response.headers["x-content-type-options"] == "nosniff"
    assert "script-src" not in CSP and "default-src 'none'" in CSP


def test_the_list_shows_the_request_with_its_counts_and_filters_by_step(stack, scored):
    step, link, _ = scored
    with stack.client() as client:
        page = client.get("/inspect", params={"step": step}).text
        other = client.get("/inspect", params={"step": step + 1}).text
        everything = client.get("/inspect").text
    row = lxml.html.fromstring(page).xpath(f"//a[@href='{link}']/ancestor::tr")[0]
    cells = [td.text_content().strip() for td in row.xpath("td")]
    # time, step, items, groups, mean QA-F1, failed, no signal, invalid, seconds
    assert cells[1:4] == [str(step), "4", "2"]
    assert cells[5:8] == ["0", "1", "1"]
    assert link not in other and link in everything


def test_the_request_page_groups_items_and_shows_the_spread(stack, scored):
    _, link, _ = scored
    with stack.client() as client:
        page = lxml.html.fromstring(client.get(link).text)
    groups = page.xpath("//section[@class='group']")
    assert len(groups) == 2
    first = groups[0]
    assert "3 completions" in first.xpath("string(.//h2)")
    assert "std" in first.xpath("string(.//h2)")
    rows = [
        [td.text_content().strip() for td in tr.xpath("td")] for tr in first.xpath(".//tbody/tr")
    ]
    assert [r[1] for r in rows] == ["first", "second", "cut"]
    assert rows[2][2] == "invalid: truncated: does not end with <nl>"
    assert rows[2][3] == "0.000"


def test_the_item_page_shows_table_completion_questions_and_answers(stack, scored):
    _, link, pairs = scored
    with stack.client() as client:
        page = lxml.html.fromstring(client.get(f"{link}/items/0").text)
    assert len(page.xpath("//div[@id='qa-table']//td")) == 4
    assert page.xpath("string(//pre[@id='completion'])") == OTSL
    (row,) = page.xpath("//table[@id='answers']/tbody/tr")
    question, expected, raw, extracted, f1, origin, error = (
        td.text_content().strip() for td in row.xpath("td")
    )
    assert (question, expected) == (pairs[0]["question"], "42")
    assert raw.startswith("<answer>") and extracted == "42" and f1 == "1.000"
    assert origin in ("fresh", "cached") and error == ""


def test_comparing_two_completions_of_a_group_marks_the_changed_cell(stack, scored):
    _, link, _ = scored
    with stack.client() as client:
        page = lxml.html.fromstring(client.get(f"{link}/items/0", params={"compare": 1}).text)
        refused = client.get(f"{link}/items/0", params={"compare": 3})
    assert [c.text for c in page.xpath("//div[@id='diff-table-this']//td[@class='changed']")] == [
        "42"
    ]
    assert [c.text for c in page.xpath("//div[@id='diff-table-other']//td[@class='changed']")] == [
        "24"
    ]
    assert [td.text for td in page.xpath("//table[@id='changes']/tbody/tr/td")] == [
        "r2 c2",
        "42",
        "24",
    ]
    assert refused.status_code == 400
    (row,) = page.xpath("//table[@id='answers']/tbody/tr")
    assert [td.text_content().strip() for td in row.xpath("td")][4:6] == ["1.000", "0.000"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/inspect?step=abc", 400),
        ("/inspect?step=-1", 400),
        ("/inspect/requests/ffffffffffffffff", 404),
        ("/inspect/requests/not-an-id", 404),
    ],
)
def test_bad_addresses_answer_with_a_reason(stack, path, status):
    with stack.client() as client:
        response = client.get(path)
    assert response.status_code == status
    assert lxml.html.fromstring(response.text).xpath("string(//p[@class='error'])")


def test_a_trailing_slash_leads_to_the_list(stack):
    with stack.client() as client:
        response = client.get("/inspect/")
    assert response.status_code == 308 and response.headers["location"] == "/inspect"


def test_a_missing_item_is_404(stack, scored):
    _, link, _ = scored
    with stack.client() as client:
        assert client.get(f"{link}/items/99").status_code == 404


def test_a_step_header_that_is_not_a_step_is_refused(stack):
    with stack.client(headers={**AUTH, "X-Trivia-Step": "soon"}) as client:
        response = client.post("/v1/rewards", json={"items": []})
    assert response.status_code == 422


def test_the_stylesheet_is_served_by_the_gateway(stack):
    with stack.client(headers={}) as client:
        response = client.get("/inspect/static/inspect.css")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")
