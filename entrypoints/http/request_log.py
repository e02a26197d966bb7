"""One structured log line per request: method, route path, status, duration, tenant, outcome;
and the request counted in the metrics (``entrypoints.http.metrics``) by what it did.

Never a header, a body or a query string: those are where tokens, passwords and keys travel.
The tenant id and the error code are left in the request state by the auth dependencies,
the controllers and the error handlers. This is the only access log: ``serve`` turns
uvicorn's own off.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.metrics import UNMATCHED_ROUTE, Metrics

log = logging.getLogger("tierkeeper.http.access")


def request_log_middleware(app: ASGIApp, metrics: Metrics | None = None) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            state: dict[str, Any] = scope.get("state", {})
            seconds = time.perf_counter() - started
            if metrics is not None:
                route = str(scope.get("path_template") or UNMATCHED_ROUTE)
                metrics.observe_request(route, str(scope.get("method")), status, seconds, state)
            log.info(
                json.dumps(
                    {
                        "event": "http_request",
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "duration_ms": round(seconds * 1000, 1),
                        "tenant_id": state.get("tenant_id"),
                        "service": state.get("service"),
                        "outcome": state.get("error_code") or ("ok" if status < 400 else "error"),
                    },
                    separators=(",", ":"),
                )
            )

    return middleware
