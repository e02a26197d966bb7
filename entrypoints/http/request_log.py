"""One structured log line per request: method, route path, status, duration, tenant, outcome.

Never a header, a body or a query string: those are where tokens, passwords and keys travel.
The tenant id and the error code are left in the request state by the auth dependencies,
the controllers and the error handlers.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tierkeeper.http.access")


def request_log_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
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
            state: dict[str, Any] = scope.get("state", {})  # type: ignore[assignment]
            log.info(
                json.dumps(
                    {
                        "event": "http_request",
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "tenant_id": state.get("tenant_id"),
                        "service": state.get("service"),
                        "outcome": state.get("error_code") or ("ok" if status < 400 else "error"),
                    },
                    separators=(",", ":"),
                )
            )

    return middleware
