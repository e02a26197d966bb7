"""The floor of the proxy benchmark: a pass-through proxy doing nothing but the two HTTP hops
every proxy must make. A bare ASGI app (no framework) under the same uvicorn settings as
tierkeeper, forwarding each call's body unchanged to the stub with tierkeeper's own upstream
client (``AiohttpLlmUpstream``: one pooled aiohttp session) and passing the answer through as
it arrives. No key check, no ledger, no routing, no JSON parsing: whatever it costs, any
Python proxy on this machine costs at least that.

    NULL_PROXY_UPSTREAM=http://127.0.0.1:PORT \
        uvicorn null_proxy_app:create_app --factory --app-dir bench
"""

from __future__ import annotations

import os
from typing import Any

from adapters.llm.aiohttp_upstream import AiohttpLlmUpstream
from domain.proxy import UpstreamRequest

Scope = dict[str, Any]


def create_app() -> Any:
    upstream_url = os.environ["NULL_PROXY_UPSTREAM"].rstrip("/")
    upstream = AiohttpLlmUpstream()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await upstream.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] != "POST":  # the benchmark's readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        request = UpstreamRequest(
            f"{upstream_url}{scope['path']}",
            (("content-type", "application/json"),),
            b"".join(parts),
        )
        response = await upstream.send(request)
        await send({
            "type": "http.response.start", "status": response.status_code,
            "headers": [(b"content-type", response.content_type.encode())],
        })  # fmt: skip
        try:
            async for chunk in response.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await response.close()
        await send({"type": "http.response.body", "body": b""})

    return app
