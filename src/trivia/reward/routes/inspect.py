"""`/inspect`: the scored requests a person reads in a browser (list, request, item, sign-in).

Pages are HTML (not in the OpenAPI schema). They need the gateway's token: the bearer header,
or the session cookie the sign-in form gives (see `inspector.session`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from redis.exceptions import RedisError

from trivia.reward.gateway_state import GatewayState, get_state
from trivia.reward.inspector import store
from trivia.reward.inspector.pages import page, static_file
from trivia.reward.inspector.record import summarise
from trivia.reward.inspector.session import COOKIE, SESSION_S, Session
from trivia.reward.inspector.views import cell_diff, item_table_html, spread

router = APIRouter(prefix="/inspect", include_in_schema=False)

_REQUEST_ID = re.compile(r"^[0-9a-f]{16}$")
_MAX_FORM_BYTES = 4096
State = Annotated[GatewayState, Depends(get_state)]


class SignIn(Exception):
    """The page needs a session: answered with a redirect to the sign-in form."""


def _session(state: GatewayState) -> Session:
    return Session(state.settings.api_token)


async def _allowed(request: Request, state: State) -> GatewayState:
    if not _session(state).allows(request):
        raise SignIn
    return state


Allowed = Annotated[GatewayState, Depends(_allowed)]


async def sign_in_redirect(request: Request, exc: Exception) -> Response:
    """Exception handler: send the browser to the form, then back to where it was going."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/inspect/login?next={quote(target, safe='')}", status_code=303)


def _safe_next(target: str | None) -> str:
    # Only a path of this site, never `//host` or a scheme: no open redirect.
    if target and target.startswith("/inspect") and not target.startswith("//"):
        return target
    return "/inspect"


@router.get("/static/{name}")
async def static(name: str) -> Response:
    return static_file(name) or _error(404, f"no file {name}")


@router.get("/login")
async def login_form(state: State, next: str | None = None) -> Response:
    if _session(state).open:
        return RedirectResponse(_safe_next(next), status_code=303)
    return page("login.html", next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request, state: State) -> Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return page("login.html", 413, next="/inspect", error="form too large")
    form = parse_qs(body.decode("utf-8", "replace"))
    target = _safe_next((form.get("next") or [None])[0])
    session = _session(state)
    if session.open:
        return RedirectResponse(target, status_code=303)
    if not session.token_ok((form.get("token") or [""])[0]):
        return page("login.html", 401, next=target, error="wrong token")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session.issue(),
        max_age=SESSION_S,
        path="/inspect",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/inspect/login", status_code=303)
    response.delete_cookie(COOKIE, path="/inspect")
    return response


@router.get("")
async def request_list(state: Allowed, step: str | None = None) -> Response:
    chosen: int | None = None
    if step not in (None, ""):
        if not step.isdigit():
            return _error(400, f"step must be a whole number ≥ 0, not {step!r}")
        chosen = int(step)
    try:
        summaries = await store.load_summaries(state.redis, chosen)
    except (RedisError, OSError) as exc:
        return _error(503, f"Redis unreachable: {type(exc).__name__}")
    return page(
        "list.html",
        summaries=summaries,
        step=chosen,
        keep=state.settings.inspect_keep,
        ttl_h=state.settings.inspect_ttl_s / 3600,
    )


@router.get("/requests/{request_id}")
async def request_page(request_id: str, state: Allowed) -> Response:
    record = await _record(state, request_id)
    if isinstance(record, Response):
        return record
    items = record["items"]
    groups = [
        {
            "number": g,
            "items": [(i, items[i]) for i in members],
            "spread": spread([items[i]["qa_f1"] if items[i]["valid"] else None for i in members]),
        }
        for g, members in enumerate(record["groups"])
    ]
    return page("request.html", record=record, groups=groups, summary=summarise(record))


@router.get("/requests/{request_id}/items/{index}")
async def item_page(
    request_id: str, index: int, state: Allowed, compare: str | None = None
) -> Response:
    record = await _record(state, request_id)
    if isinstance(record, Response):
        return record
    items = record["items"]
    if not 0 <= index < len(items):
        return _error(404, f"request {request_id} has no item {index}")
    item = items[index]
    group = record["groups"][item["group"]]
    table_html, seen_by_qa = item_table_html(record, item)
    context: dict[str, Any] = {
        "record": record,
        "index": index,
        "item": item,
        "group": group,
        "table_html": table_html,
        "seen_by_qa": seen_by_qa,
        "other": None,
    }
    if compare not in (None, ""):
        if not compare.isdigit() or int(compare) not in group or int(compare) == index:
            return _error(400, f"compare must be another item of group {item['group']}")
        other_index = int(compare)
        other = items[other_index]
        other_html, _ = item_table_html(record, other)
        rows_a, rows_b, changes = cell_diff(table_html, other_html)
        context.update(
            other=other, other_index=other_index, rows_a=rows_a, rows_b=rows_b, changes=changes
        )
    return page("item.html", **context)


async def _record(state: GatewayState, request_id: str) -> dict[str, Any] | Response:
    if not _REQUEST_ID.match(request_id):
        return _error(404, "no such request")
    try:
        record = await store.load_detail(state.redis, request_id)
    except (RedisError, OSError) as exc:
        return _error(503, f"Redis unreachable: {type(exc).__name__}")
    if record is None:
        return _error(404, f"request {request_id} is no longer kept (expired or trimmed)")
    return record


def _error(status_code: int, reason: str) -> Response:
    return page("error.html", status_code, code=status_code, reason=reason)


@router.get("/{rest:path}")
async def not_found(rest: str) -> Response:
    """Any other address under /inspect: the inspector's own 404 page (same headers)."""
    if not rest:
        return RedirectResponse("/inspect", status_code=308)
    return _error(404, f"no page at /inspect/{rest}")
