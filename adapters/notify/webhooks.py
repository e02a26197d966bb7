"""Customers' webhooks: the signed JSON is POSTed with httpx; anything but a 2xx answer
(or no answer within the timeout) is a failed attempt that the deliverer retries.

A customer chooses the URL, so the server would otherwise POST wherever it points: unless
``allow_private`` (``TIERKEEPER_WEBHOOK_ALLOW_PRIVATE=1``, for development and tests), a URL
whose host resolves to a loopback, private, link-local (cloud metadata), multicast or
reserved address is refused before any connection, and redirects are never followed. The
check resolves the name once; a DNS answer that changes between the check and the connection
is not caught (no pinning of the resolved address)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs
import httpx

from domain.notifications import DeliveryFailed

WEBHOOK_TIMEOUT_S = 10.0


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


async def check_public_host(url: str) -> None:
    """``DeliveryFailed`` unless every address the URL's host resolves to is public."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise DeliveryFailed(f"webhook: the host {host!r} does not resolve") from None
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise DeliveryFailed(f"webhook: the host {host!r} is not a public address; refused")


@attrs.frozen
class HttpxWebhookPoster:
    timeout_s: float = WEBHOOK_TIMEOUT_S
    allow_private: bool = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        if not self.allow_private:
            await check_public_host(url)
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s, follow_redirects=False, trust_env=False
            ) as client:
                response = await client.post(
                    url, content=body, headers={**headers, "user-agent": "tierkeeper-webhooks"}
                )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"webhook: the receiver answered {response.status_code}")
