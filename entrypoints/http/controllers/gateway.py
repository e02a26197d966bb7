"""The gateway's service endpoints: admit, settle, key failure, tenant config."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.params import JSONBody, Parameter

from domain.ids import MessageId, TenantId
from domain.metering import Credential, TokenUsage
from domain.use_cases.metering import Refusal
from entrypoints.http.auth import (
    SERVICE_SECURITY,
    ServiceDep,
    ServicesDep,
    provide_service,
)
from entrypoints.http.errors import refusal_error
from entrypoints.http.openapi import errors
from entrypoints.http.schemas import (
    IDENTIFIER_PATTERN,
    AdmitIn,
    AdmitOut,
    ConfigOut,
    CredentialIn,
    KeyFailureIn,
    KeyFailureOut,
    KeyStatusOut,
    ModelRouteOut,
    RemainingOut,
    SettleIn,
    SettleOut,
)

GATEWAY_ERRORS = (401, 403, 404, 503)


def config_digest(document: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON: equal configs, equal digests."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class GatewayController(Controller):
    path = "/api/v1/gateway"
    tags = ("gateway",)
    dependencies = {"service": Provide(provide_service)}  # noqa: RUF012
    security = SERVICE_SECURITY

    @post("/admit", status_code=200, responses=errors(*GATEWAY_ERRORS, 402, 409, 429))
    async def admit(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[AdmitIn],
        service: ServiceDep,
        services: ServicesDep,
    ) -> AdmitOut:
        """Admit one message against the cap and budget, or refuse with why and when it
        resets. Repeating a message_id returns the first answer and counts once."""
        request.state.tenant_id = data.tenant_id
        admission = await services.metering.admit(
            TenantId(data.tenant_id), MessageId(data.message_id), data.max_tokens
        )
        if isinstance(admission, Refusal):
            raise refusal_error(admission.decision)
        decision = admission.decision
        request.state.admission = "replayed" if decision.replayed else "admitted"
        primary, fallbacks = admission.route.refs()
        return AdmitOut(
            admitted=True,
            reservation_id=decision.reservation_id,
            model=ModelRouteOut(primary=primary, fallbacks=list(fallbacks)),
            remaining=RemainingOut(
                messages_today=admission.messages_remaining,
                tokens_in_period=admission.tokens_remaining,
            ),
        )

    @post("/settle", status_code=200, responses=errors(*GATEWAY_ERRORS, 409))
    async def settle(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SettleIn],
        service: ServiceDep,
        services: ServicesDep,
    ) -> SettleOut:
        """Replace the reservation by the weighted actual tokens; idempotent on message_id.
        Checked against the admission: ``tenant`` counts as the tenant's key only when the
        admission routed there, an unoffered model is rated at the route's dearest, an
        unknown message_id counts in full; ``counted_as`` and ``anomaly`` say how it counted."""
        request.state.tenant_id = data.tenant_id
        settlement = await services.metering.settle(
            TenantId(data.tenant_id),
            MessageId(data.message_id),
            data.model,
            TokenUsage(data.input_tokens, data.output_tokens, data.cache_read_tokens),
            Credential(data.credential.value),
        )
        request.state.settlement = "replayed" if settlement.replayed else "settled"
        if settlement.anomaly is not None:
            request.state.settle_anomaly = settlement.anomaly.value
        return SettleOut(
            settled=True,
            counted_as=CredentialIn(settlement.counted_as.value),
            anomaly=settlement.anomaly.value if settlement.anomaly else None,
        )

    @post("/key-failure", status_code=200, responses=errors(*GATEWAY_ERRORS, 503))
    async def key_failure(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[KeyFailureIn],
        service: ServiceDep,
        services: ServicesDep,
    ) -> KeyFailureOut:
        """A provider rejected the tenant's key: 401/403 mark it invalid and regenerate the
        tenant's config (platform fallback takes over); answers the key's status."""
        request.state.tenant_id = data.tenant_id
        status = await services.credentials.report_key_failure(
            TenantId(data.tenant_id), data.provider, data.status_code
        )
        assert status is not None
        return KeyFailureOut(status=KeyStatusOut(status.value))

    @get("/tenants/{tenant_id:str}/config", responses=errors(*GATEWAY_ERRORS, 503))
    async def tenant_config(
        self,
        request: Request[Any, Any, Any],
        tenant_id: Annotated[str, Parameter(pattern=IDENTIFIER_PATTERN)],
        service: ServiceDep,
        services: ServicesDep,
    ) -> ConfigOut:
        """The tenant's OpenClaw document and the variable names it needs; secret values are
        never included."""
        request.state.tenant_id = tenant_id
        document = await services.config_documents.document(TenantId(tenant_id))
        return ConfigOut(
            openclaw=document.openclaw,
            env_names=list(document.env_names),
            generated_at=document.generated_at,
            digest=config_digest(document.openclaw),
        )
