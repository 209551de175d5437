"""Render the inspector's pages: jinja2 templates shipped in the package, strict headers.

Every page is served with a Content-Security-Policy that allows nothing but the gateway's own
stylesheet and forms: no script runs, no frame, image, font or connection goes anywhere, even if
a model's table slipped past the sanitiser.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _expected(answer: str | list[str]) -> str:
    # A question may accept several answers (aliases); the best F1 among them counts.
    return answer if isinstance(answer, str) else " | ".join(answer)


def _when(value: float) -> str:
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


_env = Environment(
    loader=PackageLoader("trivia.reward.inspector", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["score"] = _score
_env.filters["when"] = _when
_env.filters["expected"] = _expected


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A rendered page with the inspector's security headers."""
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=_HEADERS)


_STATIC = {"inspect.css": "text/css", "favicon.svg": "image/svg+xml"}


def static_file(name: str) -> Response | None:
    """The stylesheet or the icon (served by the gateway: no CDN, no build step); None for
    any other name."""
    media_type = _STATIC.get(name)
    if media_type is None:
        return None
    body = resources.files("trivia.reward.inspector").joinpath("static", name).read_bytes()
    headers = {**_HEADERS, "Cache-Control": "max-age=3600"}
    return Response(body, media_type=media_type, headers=headers)
