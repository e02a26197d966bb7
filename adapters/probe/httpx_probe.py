"""Test a BYOK key against its provider's cheapest authenticated endpoint (its models list).

The URL, auth style and extra headers come from the catalog, so tests point providers at a
local stub with ``TIERKEEPER_PROVIDER_<ID>_BASE_URL``. The key goes only into the request's
auth header: it is never logged, never put into a detail message, and httpx's own request
logging is not enabled here.
"""

from __future__ import annotations

import time

import httpx

from domain.byok import ProbeOutcome, ProbeResult, classify_probe_status
from domain.catalog import AuthStyle, ByokProvider
from domain.secrets import Secret

DEFAULT_TIMEOUT_S = 5.0

_DETAILS = {
    ProbeResult.VALID: "the provider accepted the key",
    ProbeResult.INVALID_KEY: "the provider rejected the key",
    ProbeResult.RATE_LIMITED: "the provider is rate limiting this key; try again shortly",
}


def auth_headers(provider: ByokProvider, api_key: Secret) -> dict[str, str]:
    headers = dict(provider.extra_headers)
    raw = api_key.reveal()
    if provider.auth_style is AuthStyle.BEARER:
        headers["Authorization"] = f"Bearer {raw}"
    elif provider.auth_style is AuthStyle.X_API_KEY:
        headers["x-api-key"] = raw
    else:
        headers["x-goog-api-key"] = raw
    return headers


def probe_url(provider: ByokProvider) -> str:
    return provider.base_url.rstrip("/") + "/" + provider.test_path.lstrip("/")


class HttpxProviderProbe:
    """One short GET per test; ``transport`` lets a test or an app share a connection pool."""

    def __init__(
        self,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._transport = transport

    def __repr__(self) -> str:
        return f"HttpxProviderProbe(timeout_s={self._timeout_s})"

    async def test_key(self, provider: ByokProvider, api_key: Secret) -> ProbeOutcome:
        started = time.perf_counter()
        status: int | None = None
        reason = ""
        try:
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout_s),
                transport=self._transport,
                follow_redirects=False,
                trust_env=False,
            ) as client:
                response = await client.get(
                    probe_url(provider), headers=auth_headers(provider, api_key)
                )
            status = response.status_code
        except httpx.TimeoutException:
            reason = f"{provider.name} did not answer within {self._timeout_s:g} s"
        except httpx.HTTPError as exc:
            reason = f"{provider.name} could not be reached ({type(exc).__name__})"
        latency_ms = round((time.perf_counter() - started) * 1000)
        result = classify_probe_status(status)
        if status is None:
            detail = reason
        elif result is ProbeResult.UNREACHABLE:
            detail = f"{provider.name} answered HTTP {status}"
        else:
            detail = f"{_DETAILS[result]} (HTTP {status})"
        return ProbeOutcome(result=result, detail=detail, latency_ms=latency_ms)
