"""The LLM proxy's call routes served straight from ASGI: ``POST /v1/chat/completions`` and
``POST /v1/messages`` are parsed, proxied and answered without Litestar's routing,
dependency injection and response building, which cost about a tenth of a proxied call's
CPU (bench/bench_proxy.py). Any other request goes to Litestar, which still declares these
routes (other methods, a trailing slash).

The request log line, the metrics and the origin guard are outer ASGI middlewares and see
these calls as they see every request; a failure before the answer starts is answered by
the app's own exception handlers, as Litestar would answer it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from domain.proxy import WireFormat
from domain.use_cases.llm_proxy import ProxyAnswer, ProxyRefusal
from entrypoints.http.controllers.llm_proxy import (
    REFUSAL_HEADER,
    proxy_outcome,
    read_body,
    refusal_body,
)

CALL_ROUTES = {"/v1/chat/completions": WireFormat.OPENAI, "/v1/messages": WireFormat.ANTHROPIC}
JSON = b"application/json"
STREAM_HEADERS = [(b"cache-control", b"no-cache")]


def proxy_fast_path(app: ASGIApp) -> ASGIApp:
    async def fast_path(scope: Scope, receive: Receive, send: Send) -> None:
        wire = CALL_ROUTES.get(scope["path"]) if scope["type"] == ScopeType.HTTP else None
        if wire is None or scope.get("method") != "POST":
            await app(scope, receive, send)
            return
        scope["path_template"] = scope["path"]
        try:  # a failure before the answer starts is answered as Litestar would answer it
            outcome = await outcome_of(scope, receive, wire)
        except Exception as exc:
            await answer_failure(scope, receive, send, exc)
            return
        await respond(receive, send, wire, outcome)

    return fast_path


async def outcome_of(
    scope: Scope, receive: Receive, wire: WireFormat
) -> ProxyAnswer | ProxyRefusal:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    body = await read_body(receive)
    services = scope["app"].state.services
    return await proxy_outcome(services.llm_proxy, wire, body, headers, scope["state"])


async def respond(
    receive: Receive, send: Send, wire: WireFormat, outcome: ProxyAnswer | ProxyRefusal
) -> None:
    if isinstance(outcome, ProxyRefusal):
        extra = [(REFUSAL_HEADER.encode(), outcome.code.encode())]
        await answer(send, outcome.status_code, JSON, refusal_body(wire, outcome), extra)
    elif outcome.chunks is None:
        await answer(send, outcome.status_code, outcome.content_type.encode(), outcome.body)
    else:
        await stream(receive, send, outcome.status_code, outcome.content_type, outcome.chunks)


async def answer(
    send: Send, status: int, media_type: bytes, body: bytes, extra: list[Any] | None = None
) -> None:
    headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + (extra or [])})  # fmt: skip
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def stream(
    receive: Receive,
    send: Send,
    status: int,
    media_type: str,
    chunks: AsyncIterator[bytes],
) -> None:
    """Each chunk as it comes; a caller that goes away stops the stream (the proxy then
    settles what the provider reported so far)."""
    headers = [(b"content-type", media_type.encode()), *STREAM_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})

    async def relay() -> None:
        # closed here even when cancelled between two chunks, so the call settles at once
        async with contextlib.aclosing(chunks):  # type: ignore[type-var]
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def caller_left() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    relaying = asyncio.ensure_future(relay())
    watching = asyncio.ensure_future(caller_left())
    try:
        await asyncio.wait((relaying, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        if not relaying.done():  # the caller left (or the server is stopping)
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
    if not relaying.cancelled():
        relaying.result()  # a failure mid-stream, as Litestar would raise it


async def answer_failure(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """The app's exception handler for this kind of failure answers it, its response sent as
    Litestar sends any response."""
    app = scope["app"]
    handler = next(
        app.exception_handlers[cls] for cls in type(exc).__mro__ if cls in app.exception_handlers
    )
    request: Request[Any, Any, Any] = Request(scope, receive)
    response = handler(request, exc)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)
