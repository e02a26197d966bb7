"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from entrypoints.http.auth import ServicesDep
from entrypoints.http.errors import error_response
from entrypoints.http.openapi import errors
from entrypoints.http.schemas import ErrorBody, HealthOut, ReadyOut


class HealthController(Controller):
    path = "/"
    tags = ("health",)
    include_in_schema = True

    @get("/healthz", security=[])
    async def healthz(self) -> HealthOut:
        """200 while the process runs."""
        return HealthOut(status="ok")

    @get("/readyz", security=[], responses=errors(503))
    async def readyz(
        self, request: Request[Any, Any, Any], services: ServicesDep
    ) -> Response[ReadyOut] | Response[ErrorBody]:
        """200 when the database (for writes too: a read-only one admits nothing) and the key
        store answer; 503 naming the one that does not."""
        try:
            await services.ports.tenants.count()
            await services.ports.ledger.check_writable()
        except Exception:  # any failure means: not ready
            return error_response(
                request, 503, "database_unavailable", "the database does not answer"
            )
        try:
            await services.ports.key_store.check()
        except Exception:  # any failure means: not ready
            return error_response(
                request, 503, "key_store_unavailable", "the key store does not answer"
            )
        return Response(ReadyOut(status="ready", database="ok", key_store="ok"))
