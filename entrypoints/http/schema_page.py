"""``/schema``: the API reference rendered on the server, with no script at all.

Litestar's default renderers load a JavaScript bundle from a CDN into a page of the session's
origin, with no Subresource Integrity and no CSP: whoever controls that CDN runs code with
the customer's cookies. This page lists every operation from the OpenAPI document as plain
HTML under a CSP that allows no script; the document itself is at ``/schema/openapi.json``.
"""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

SCHEMA_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
METHODS = ("get", "put", "post", "patch", "delete")


class ServerRenderedDocs(OpenAPIRenderPlugin):
    """The operations grouped by path, their summaries and descriptions; no script."""

    def __init__(self, *, path: str = "/") -> None:
        super().__init__(path=path)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        info = openapi_schema.get("info", {})
        title = escape(str(info.get("title", "API")))
        document = escape(self.get_openapi_json_route(request))
        parts = [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<meta http-equiv='Content-Security-Policy' content=\"{SCHEMA_CSP}\">",
            f"<title>{title} API</title>",
            "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
            "padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}h2{margin-top:2rem}"
            "p.d{white-space:pre-line;color:#333}</style></head><body>",
            f"<h1>{title} API {escape(str(info.get('version', '')))}</h1>",
            f"<p>{escape(str(info.get('description', '')))}</p>",
            f"<p>The OpenAPI 3.1 document: <a href='{document}'>openapi.json</a>.</p>",
        ]
        for path, operations in sorted(openapi_schema.get("paths", {}).items()):
            for method in METHODS:
                operation = operations.get(method)
                if operation is None:
                    continue
                parts.append(f"<h2><code>{method.upper()} {escape(path)}</code></h2>")
                summary = operation.get("summary")
                if summary:
                    parts.append(f"<p><strong>{escape(str(summary))}</strong></p>")
                description = operation.get("description")
                if description:
                    parts.append(f"<p class='d'>{escape(str(description))}</p>")
        parts.append("</body></html>")
        return "".join(parts).encode("utf-8")
