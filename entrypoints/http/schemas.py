"""Wire schemas of the HTTP API: what goes over the network, separate from domain objects.

Inputs are bounded here (lengths, ranges) so the OpenAPI document states them; the domain
still validates meaning (key shape, known provider, time zone).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec

Email = Annotated[str, msgspec.Meta(max_length=320, examples=["ada@example.com"])]
Password = Annotated[str, msgspec.Meta(max_length=1024)]
TimeZone = Annotated[str, msgspec.Meta(max_length=64, examples=["Europe/Berlin"])]
IDENTIFIER_PATTERN = r"^[\x21-\x7e]{1,200}$"
"""Printable ASCII without spaces: ids and model refs (no byte a database would refuse)."""
Identifier = Annotated[str, msgspec.Meta(pattern=IDENTIFIER_PATTERN)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
ApiKey = Annotated[str, msgspec.Meta(max_length=4096)]
TokenCount = Annotated[int, msgspec.Meta(ge=0, le=20_000_000)]
MaxTokens = Annotated[int, msgspec.Meta(ge=1, le=2_000_000)]
HttpStatus = Annotated[int, msgspec.Meta(ge=100, le=599)]


class Wire(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Base of every wire schema."""


# --- errors ---------------------------------------------------------------------------------


class ErrorBody(Wire, omit_defaults=True):
    code: str
    detail: str
    field: str | None = None
    resets_at: datetime | None = None


# --- auth -----------------------------------------------------------------------------------


class SignupIn(Wire):
    email: Email
    password: Password
    timezone: TimeZone | None = None


class LoginIn(Wire):
    email: Email
    password: Password


class UserOut(Wire):
    id: str
    email: str


class TenantBrief(Wire):
    id: str
    tier: str
    status: str


class SignupOut(Wire):
    user: UserOut
    tenant: TenantBrief
    token: str


class TokenOut(Wire):
    token: str


# --- catalog --------------------------------------------------------------------------------


class PriceOut(Wire):
    amount_cents: int
    currency: str
    interval: str


class TierOut(Wire):
    id: str
    name: str
    price: PriceOut
    primary_model: str | None
    fallback_models: list[str]
    selectable_models: list[str]
    message_cap_per_day: int
    token_budget_per_period: int | None
    tool_profile: str


class CapabilitiesOut(Wire):
    """What a model can do as the tenant's config writes it: inputs (``text``, ``image``,
    ``video``, ``audio``), reasoning, context window and most output tokens per answer."""

    input: list[str]
    reasoning: bool
    context_window: int
    max_tokens: int


class ProviderModelOut(CapabilitiesOut):
    id: str
    name: str


class ProviderOut(Wire):
    id: str
    name: str
    key_hint: str
    models: list[ProviderModelOut]
    accepts_any_model: bool
    unlisted_model: CapabilitiesOut | None
    """What is assumed of a model the provider accepts without listing it (else null)."""


# --- tenant and usage -----------------------------------------------------------------------


class ModelRouteOut(Wire):
    primary: str | None
    fallbacks: list[str]


class TenantOut(Wire):
    id: str
    tier: str
    status: str
    timezone: str
    billing_anchor_day: int
    model: ModelRouteOut
    welcome_message: str


class TenantPatch(Wire):
    """Omitted fields stay; ``model_preference: null`` restores the tier's default model."""

    timezone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    model_preference: ShortText | msgspec.UnsetType | None = msgspec.UNSET


class DayUsageOut(Wire):
    messages_used: int
    message_cap: int
    resets_at: datetime


class PeriodUsageOut(Wire):
    tokens_used: int
    token_budget: int | None
    starts_at: datetime
    resets_at: datetime


class FallbackUsageOut(Wire):
    tokens_used: int
    token_budget: int | None


class UsageOut(Wire):
    day: DayUsageOut
    period: PeriodUsageOut
    platform_fallback: FallbackUsageOut | None


# --- BYOK settings --------------------------------------------------------------------------


class KeyStatusOut(StrEnum):
    UNVERIFIED = "unverified"
    VALID = "valid"
    INVALID = "invalid"


class LlmConfigOut(Wire):
    provider: str
    model_preference: str
    api_key_masked: str
    status: KeyStatusOut
    last_verified_at: datetime | None
    last_error: str | None
    allow_platform_fallback: bool
    created_at: datetime
    updated_at: datetime


class LlmConfigIn(Wire):
    """``api_key`` may be omitted (or null) only when a key for the same provider is stored."""

    provider: ShortText
    model_preference: ShortText
    api_key: ApiKey | None = None
    allow_platform_fallback: bool | None = None


class LlmTestIn(Wire):
    """Without ``api_key`` the stored key is tested (and its status updated)."""

    provider: ShortText | None = None
    api_key: ApiKey | None = None
    model_preference: ShortText | None = None


class ProbeResultOut(StrEnum):
    VALID = "valid"
    INVALID_KEY = "invalid_key"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"


class LlmTestOut(Wire):
    result: ProbeResultOut
    detail: str
    latency_ms: int


# --- billing --------------------------------------------------------------------------------


class CheckoutIn(Wire):
    tier: ShortText


class CheckoutOut(Wire):
    checkout_url: str
    session_id: str


class WebhookOut(Wire):
    received: bool


class ChangePlanIn(Wire):
    tier: ShortText


class BillingOut(Wire):
    tier: str
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    pending_tier: str | None
    has_subscription: bool


class PortalOut(Wire):
    url: str


# --- gateway --------------------------------------------------------------------------------


class AdmitIn(Wire):
    tenant_id: Identifier
    message_id: Identifier
    max_tokens: MaxTokens | None = None


class RemainingOut(Wire):
    messages_today: int | None
    tokens_in_period: int | None


class AdmitOut(Wire):
    admitted: bool
    reservation_id: str
    model: ModelRouteOut
    remaining: RemainingOut


class CredentialIn(StrEnum):
    TENANT = "tenant"
    PLATFORM = "platform"


class SettleIn(Wire):
    tenant_id: Identifier
    message_id: Identifier
    model: Identifier
    input_tokens: TokenCount
    output_tokens: TokenCount
    credential: CredentialIn
    cache_read_tokens: TokenCount = 0


class SettleOut(Wire):
    settled: bool


class KeyFailureIn(Wire):
    tenant_id: Identifier
    provider: ShortText
    status_code: HttpStatus


class KeyFailureOut(Wire):
    status: KeyStatusOut


class ConfigOut(Wire):
    openclaw: dict[str, Any]
    env_names: list[str]
    generated_at: datetime
    digest: str


# --- health ---------------------------------------------------------------------------------


class HealthOut(Wire):
    status: str


class ReadyOut(Wire):
    status: str
    database: str
    key_store: str
