"""The benchmark's LLM upstream: a bare ASGI app (no framework) answering OpenAI Chat
Completions, whole or streamed (five SSE chunks and the usage chunk), always the same
answer, so the proxy benchmark measures the proxy and not the upstream.

    uvicorn llm_stub_app:create_app --factory --app-dir bench

``LLM_STUB_LATENCY_MS`` (default 0) makes it answer like a real provider: it waits that long
before the first byte of every answer, and that long again between a stream's events.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

USAGE = {"prompt_tokens": 23, "completion_tokens": 11, "total_tokens": 34}
WHOLE = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "kimi-k2.5",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hello from the stub"},
             "finish_reason": "stop"}
        ],
        "usage": USAGE,
    }
).encode()  # fmt: skip
CHUNK = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
         "model": "kimi-k2.5"}  # fmt: skip
EVENTS = [
    *(
        b"data: " + json.dumps(CHUNK | {"choices": [{"index": 0, "delta": {"content": f"w{i} "},
                                                      "finish_reason": None}]}).encode() + b"\n\n"
        for i in range(5)
    ),
    b"data: " + json.dumps(CHUNK | {"choices": [], "usage": USAGE}).encode() + b"\n\n",
    b"data: [DONE]\n\n",
]  # fmt: skip


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def create_app() -> Any:
    latency_s = float(os.environ.get("LLM_STUB_LATENCY_MS", "0")) / 1000

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = await _body(receive)
        if latency_s:
            await asyncio.sleep(latency_s)
        if b'"stream": true' in body or b'"stream":true' in body:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
            for n, event in enumerate(EVENTS):
                if latency_s and n:
                    await asyncio.sleep(latency_s)
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(WHOLE)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": WHOLE})

    return app
