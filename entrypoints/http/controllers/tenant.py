"""The customer's own tenant and its usage; the tenant is always the caller's."""

from __future__ import annotations

from litestar import Controller, get, patch
from litestar.di import Provide
from litestar.params import JSONBody

from domain.use_cases.tenants import TenantOverview
from entrypoints.http.auth import (
    CUSTOMER_SECURITY,
    CustomerDep,
    ServicesDep,
    provide_customer,
    tenant_of,
)
from entrypoints.http.openapi import CUSTOMER_ERRORS, errors
from entrypoints.http.schemas import (
    DayUsageOut,
    FallbackUsageOut,
    ModelRouteOut,
    PendingTimezoneOut,
    PeriodUsageOut,
    TenantOut,
    TenantPatch,
    UsageOut,
)


def tenant_out(overview: TenantOverview) -> TenantOut:
    tenant = overview.tenant
    primary, fallbacks = overview.route.refs()
    pending = overview.pending_timezone
    return TenantOut(
        id=tenant.id,
        tier=tenant.tier,
        status=tenant.status.value,
        timezone=overview.timezone,
        pending_timezone=None
        if pending is None
        else PendingTimezoneOut(timezone=pending.timezone, applies_at=pending.applies_at),
        billing_anchor_day=tenant.billing_anchor_day,
        model=ModelRouteOut(primary=primary, fallbacks=list(fallbacks)),
        welcome_message=overview.welcome_message,
    )


class TenantController(Controller):
    path = "/api/v1"
    tags = ("tenant",)
    dependencies = {"customer": Provide(provide_customer)}  # noqa: RUF012
    security = CUSTOMER_SECURITY

    @get("/tenant", responses=errors(*CUSTOMER_ERRORS))
    async def get_tenant(self, customer: CustomerDep, services: ServicesDep) -> TenantOut:
        """The caller's tenant: tier, status, time zone, anchor day, route and welcome."""
        return tenant_out(await services.tenants.overview(tenant_of(customer)))

    @patch("/tenant", responses=errors(*CUSTOMER_ERRORS))
    async def patch_tenant(
        self, data: JSONBody[TenantPatch], customer: CustomerDep, services: ServicesDep
    ) -> TenantOut:
        """Change the time zone, or the model among the tier's selectable models
        (``model_preference: null`` restores the default)."""
        tenant_id = tenant_of(customer)
        preference = data.model_preference
        await services.tenants.update(
            tenant_id,
            timezone=data.timezone if isinstance(data.timezone, str) else None,
            model_preference=preference if isinstance(preference, str) else None,
            clear_model_preference=preference is None,
        )
        return tenant_out(await services.tenants.overview(tenant_id))

    @get("/usage", responses=errors(*CUSTOMER_ERRORS))
    async def usage(self, customer: CustomerDep, services: ServicesDep) -> UsageOut:
        """Messages today against the cap; tokens this period against the budget (for BYOK:
        own-key tokens, and platform fallback tokens against the starter budget)."""
        view = await services.metering.usage(tenant_of(customer))
        fallback = None
        if view.fallback_tokens_used is not None:
            fallback = FallbackUsageOut(
                tokens_used=view.fallback_tokens_used,
                tokens_reserved=view.fallback_tokens_reserved or 0,
                token_budget=view.fallback_token_budget,
            )
        return UsageOut(
            day=DayUsageOut(
                messages_used=view.messages_used,
                message_cap=view.message_cap,
                resets_at=view.day.resets_at,
            ),
            period=PeriodUsageOut(
                tokens_used=view.tokens_used,
                tokens_reserved=view.tokens_reserved,
                token_budget=view.token_budget,
                starts_at=view.period.starts_at,
                resets_at=view.period.resets_at,
            ),
            platform_fallback=fallback,
        )
