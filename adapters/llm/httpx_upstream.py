"""``HttpxLlmUpstream``: the LLM proxy's one shared HTTP client (ADR 0009).

One ``httpx.AsyncClient`` per process keeps connections to each provider alive in a pool,
so a call costs no TCP or TLS handshake once the pool is warm. Bodies are read as they
arrive (``stream=True``) and handed on chunk by chunk; the proxy asks for them uncompressed
(``accept-encoding: identity``), so the bytes it reads usage from are the bytes it passes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from domain.errors import UpstreamUnreachable
from domain.ports import UpstreamRequest, UpstreamResponse

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0
"""Between two chunks of an answer: long, since a model may think before it writes."""
MAX_CONNECTIONS = 512
MAX_KEEPALIVE = 128
KEEPALIVE_EXPIRY_S = 60.0


def build_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        limits=httpx.Limits(
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEEPALIVE,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        ),
        follow_redirects=False,
        trust_env=False,
    )


class HttpxLlmUpstream:
    """The ``LlmUpstream`` port over one pooled httpx client; ``aclose()`` on shutdown."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or build_client()

    def __repr__(self) -> str:
        return "HttpxLlmUpstream()"

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        built = self._client.build_request(
            "POST",
            request.url,
            headers=[*request.headers, ("accept-encoding", "identity")],
            content=request.body,
        )
        try:
            response = await self._client.send(built, stream=True)
        except httpx.HTTPError as exc:
            # the exception names the URL, never the headers that carry the key
            raise UpstreamUnreachable(
                f"the provider did not answer ({type(exc).__name__})"
            ) from None
        return UpstreamResponse(
            status_code=response.status_code,
            content_type=response.headers.get("content-type", "application/json"),
            chunks=_chunks(response),
            close=response.aclose,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it arrives; a connection lost mid-answer just ends it (the proxy then
    settles what the provider reported so far)."""
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx.HTTPError:
        return
