"""BYOK settings: the caller's one provider key, masked on every read, and its test."""

from __future__ import annotations

from litestar import Controller, delete, get, post, put
from litestar.di import Provide
from litestar.params import JSONBody

from domain.byok import CredentialInput, StoredCredential
from domain.ids import UserId
from domain.secrets import Secret
from entrypoints.http.auth import (
    CUSTOMER_SECURITY,
    CustomerDep,
    ServicesDep,
    provide_customer,
    tenant_of,
)
from entrypoints.http.openapi import CUSTOMER_ERRORS, errors
from entrypoints.http.schemas import (
    KeyStatusOut,
    LlmConfigIn,
    LlmConfigOut,
    LlmTestIn,
    LlmTestOut,
    ProbeResultOut,
)


def llm_config_out(stored: StoredCredential) -> LlmConfigOut:
    """Never the key: only its mask."""
    return LlmConfigOut(
        provider=stored.provider,
        model_preference=stored.model_preference,
        api_key_masked=stored.key_mask,
        status=KeyStatusOut(stored.status.value),
        last_verified_at=stored.last_verified_at,
        last_error=stored.last_error,
        allow_platform_fallback=stored.allow_platform_fallback,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


class LlmConfigController(Controller):
    path = "/api/v1/settings/llm-config"
    tags = ("byok",)
    dependencies = {"customer": Provide(provide_customer)}  # noqa: RUF012
    security = CUSTOMER_SECURITY

    @get("/", responses=errors(*CUSTOMER_ERRORS, 503))
    async def get_config(self, customer: CustomerDep, services: ServicesDep) -> LlmConfigOut:
        """The stored credential with its key masked; 404 when none is stored."""
        return llm_config_out(await services.credentials.get(tenant_of(customer)))

    @put("/", responses=errors(*CUSTOMER_ERRORS, 503))
    async def put_config(
        self, data: JSONBody[LlmConfigIn], customer: CustomerDep, services: ServicesDep
    ) -> LlmConfigOut:
        """Store (or replace) the credential; without ``api_key`` the stored key of the same
        provider is kept. Stored on every tier; used while the tier is byok."""
        assert customer.user is not None
        stored = await services.credentials.put(
            tenant_of(customer),
            customer.user.id,
            CredentialInput(
                provider=data.provider,
                model_preference=data.model_preference,
                api_key=Secret(data.api_key) if data.api_key is not None else None,
                allow_platform_fallback=data.allow_platform_fallback,
            ),
        )
        return llm_config_out(stored)

    @delete("/", status_code=204, responses=errors(*CUSTOMER_ERRORS, 503))
    async def delete_config(self, customer: CustomerDep, services: ServicesDep) -> None:
        """Forget the credential; the tenant falls back to platform models."""
        await services.credentials.delete(tenant_of(customer), UserId(customer.subject))

    @post("/test", status_code=200, responses=errors(*CUSTOMER_ERRORS, 429, 503))
    async def test_connection(
        self, data: JSONBody[LlmTestIn], customer: CustomerDep, services: ServicesDep
    ) -> LlmTestOut:
        """Call the provider's models endpoint with the given key (not stored), or with the
        stored key, whose status the result then updates. Limited per tenant (429)."""
        await services.accounts.count_key_test(tenant_of(customer))
        outcome = await services.credentials.test(
            tenant_of(customer),
            provider_id=data.provider,
            api_key=Secret(data.api_key) if data.api_key is not None else None,
            model=data.model_preference,
        )
        return LlmTestOut(
            result=ProbeResultOut(outcome.result.value),
            detail=outcome.detail,
            latency_ms=outcome.latency_ms,
        )
