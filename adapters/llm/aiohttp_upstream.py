"""``AiohttpLlmUpstream``: the LLM proxy's one shared HTTP client per process (ADR 0012).

One ``aiohttp.ClientSession`` keeps connections to each provider alive in a pool, so a call
costs no TCP or TLS handshake once the pool is warm. The session is made on first use, on
the event loop that serves the calls. Bodies are read as they arrive and handed on chunk by
chunk; the proxy asks for them uncompressed (``accept-encoding: identity``), so the bytes it
reads usage from are the bytes it passes on. It keeps no cookies: the session is shared by
every tenant, and a cookie one provider answer sets must never ride along on another call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from domain.errors import UpstreamUnreachable
from domain.proxy import UpstreamRequest, UpstreamResponse

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0
"""Between two chunks of an answer: long, since a model may think before it writes."""
MAX_CONNECTIONS = 512
KEEPALIVE_S = 60.0
UNREACHABLE = (aiohttp.ClientError, asyncio.TimeoutError)


class AiohttpLlmUpstream:
    """The ``LlmUpstream`` port over one pooled aiohttp session; ``aclose()`` on shutdown."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return "AiohttpLlmUpstream()"

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_S
                ),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S
                ),
                auto_decompress=False,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        try:
            response = await self._pool().post(
                request.url,
                data=request.body,
                headers=[*request.headers, ("accept-encoding", "identity")],
                allow_redirects=False,
            )
        except UNREACHABLE as exc:
            # the message names the failure's kind only: never a URL, never a header
            raise UpstreamUnreachable(
                f"the provider did not answer ({type(exc).__name__})"
            ) from None

        async def close() -> None:
            """Back to the pool when the answer was read to its end, else dropped."""
            if response.content.at_eof():
                response.release()
            else:
                response.close()

        return UpstreamResponse(
            status_code=response.status,
            content_type=response.headers.get("Content-Type", "application/json"),
            chunks=_chunks(response),
            close=close,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body as it arrives; a connection lost mid-answer just ends it (the proxy then
    settles what the provider reported so far)."""
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except UNREACHABLE:
        return
