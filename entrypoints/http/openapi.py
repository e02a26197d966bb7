"""OpenAPI helpers: every documented error answer carries the one error body."""

from __future__ import annotations

from litestar.openapi import ResponseSpec

from entrypoints.http.schemas import ErrorBody

_DESCRIPTIONS = {
    400: "Bad request (e.g. invalid_signature)",
    401: "unauthorized: no valid bearer token or session",
    402: "subscription_inactive",
    403: "forbidden: wrong kind of token, or CSRF token missing",
    404: "not_found (or tenant_unknown)",
    409: "conflict",
    415: "unsupported_media_type: the API takes application/json bodies only",
    422: "validation_error, with the field at fault",
    429: "a limit is reached (message_cap_reached, token_budget_exhausted, byok_key_invalid, "
    "too_many_attempts with Retry-After)",
    502: "payment_provider_error",
    503: "key_store_unavailable, overloaded (Retry-After), or a dependency is not ready",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """Response specs for the given error statuses (422 is always included)."""
    return {
        status: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS[status])
        for status in sorted({*statuses, 422})
    }


CUSTOMER_ERRORS = (401, 403, 404)
