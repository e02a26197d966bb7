"""``GET /metrics``: the Prometheus text format, for the metrics token or a service token."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Controller, Request, Response, get

from domain.errors import Forbidden, Unauthorized
from entrypoints.bootstrap import Services
from entrypoints.http.auth import SERVICE_SECURITY, ServicesDep, bearer_token
from entrypoints.http.metrics import Metrics
from entrypoints.http.openapi import errors

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def check_scraper(request: Request[Any, Any, Any], services: Services) -> None:
    """``TIERKEEPER_METRICS_TOKEN`` as a bearer token, or any service token; anything else
    (no token, a customer's token, a wrong one) is 401."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("the metrics token or a service token is required")
    expected = services.settings.metrics_token
    if expected is not None and hmac.compare_digest(
        token.encode("utf-8"), expected.reveal().encode("utf-8")
    ):
        return
    try:
        principal = await services.accounts.service(token)
    except Forbidden:
        raise Unauthorized("the metrics token or a service token is required") from None
    request.state.service = principal.subject


class MetricsController(Controller):
    path = "/metrics"
    tags = ("operations",)
    security = SERVICE_SECURITY

    @get("/", responses=errors(401), media_type=CONTENT_TYPE)
    async def metrics(
        self, request: Request[Any, Any, Any], services: ServicesDep
    ) -> Response[bytes]:
        """Admissions, settlements, latency by route, key failures, webhooks, outbox backlog
        and database pools; summed over the worker processes of ``serve --workers N``."""
        await check_scraper(request, services)
        metrics: Metrics = request.app.state.metrics
        return Response(await metrics.exposition(services), media_type=CONTENT_TYPE)
