"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from domain.use_cases.readiness import Dependency
from entrypoints.http.auth import ServicesDep
from entrypoints.http.errors import error_response
from entrypoints.http.openapi import errors
from entrypoints.http.schemas import ErrorBody, HealthOut, ReadyOut

UNAVAILABLE = {
    Dependency.DATABASE: ("database_unavailable", "the database does not answer"),
    Dependency.KEY_STORE: ("key_store_unavailable", "the key store does not answer"),
}


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
        unavailable = await services.readiness.first_unavailable()
        if unavailable is not None:
            code, detail = UNAVAILABLE[unavailable]
            return error_response(request, 503, code, detail)
        return Response(ReadyOut(status="ready", database="ok", key_store="ok"))
