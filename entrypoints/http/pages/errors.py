"""Error pages for people: a browser that asks for a page that does not exist gets an HTML
page with a way back; the JSON API (and any client that does not ask for HTML) keeps its
``{code, detail, field}`` body. Also the favicon browsers ask for on their own."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.response import File

from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.pages.common import html_headers
from entrypoints.http.pages.rendering import STATIC_DIR, render

API_PREFIXES = ("/api/", "/schema", "/healthz", "/readyz", "/metrics")


def wants_html(request: Request[Any, Any, Any]) -> bool:
    """A browser navigating: it accepts HTML, and the path is not the API's."""
    path = request.url.path
    if path.startswith(API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def not_found_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if not wants_html(request):
        json_handler: Any = EXCEPTION_HANDLERS[HTTPException]
        return json_handler(request, exc)  # type: ignore[no-any-return]
    html = render(
        "pages/error.html",
        {
            "page": "not-found",
            "title": "Page not found",
            "message": "There is no page at this address. It may have moved, or the link "
            "may have a typo.",
            "viewer": None,
            "csrf_header": "",
            "csrf_cookie": "",
            "csrf_field": "",
            "csrf_token": "",
            "notice": "",
        },
    )
    headers = html_headers(request.app.state.services)
    return Response(html, status_code=404, media_type=MediaType.HTML, headers=headers)


def page_error_handlers() -> dict[int, Any]:
    return {404: not_found_page}


class FaviconController(Controller):
    path = "/"
    include_in_schema = False

    @get("/favicon.ico", media_type="image/svg+xml")
    async def favicon(self) -> File:
        return File(
            path=STATIC_DIR / "favicon.svg",
            content_disposition_type="inline",
            media_type="image/svg+xml",
            headers={"cache-control": "public, max-age=86400"},
        )
