"""Customers' webhooks: the signed JSON is POSTed with httpx; anything but a 2xx answer
(or no answer within the timeout) is a failed attempt that the deliverer retries."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import httpx

from domain.notifications import DeliveryFailed

WEBHOOK_TIMEOUT_S = 10.0


@attrs.frozen
class HttpxWebhookPoster:
    timeout_s: float = WEBHOOK_TIMEOUT_S

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
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
