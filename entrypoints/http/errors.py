"""The one place that turns failures into HTTP answers: ``{code, detail, field}``.

Domain errors map by their stable ``code`` (then by class); Litestar's own errors (bad JSON,
failed validation, unknown route, wrong method) are rewritten into the same body. Nothing
else leaves the process: an unexpected exception is logged here and answered with a bare
``internal_error``, never a stack trace or a value from the request.
"""

from __future__ import annotations

import logging
import re
import traceback
from datetime import UTC, datetime
from typing import Any

import attrs
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from domain.errors import (
    Conflict,
    DatabaseUnavailable,
    DomainError,
    Forbidden,
    InvalidSignature,
    KeyStoreUnavailable,
    NotFound,
    PaymentProviderError,
    Unauthorized,
    ValidationError,
)
from domain.metering import RefusalReason, Refused
from entrypoints.http.schemas import ErrorBody

log = logging.getLogger("tierkeeper.http")

REFUSALS: dict[RefusalReason, tuple[int, str]] = {
    RefusalReason.MESSAGE_CAP_REACHED: (429, "the tenant's daily message cap is reached"),
    RefusalReason.TOKEN_BUDGET_EXHAUSTED: (
        429,
        "the tenant's token budget for the period is spent",
    ),
    RefusalReason.SUBSCRIPTION_INACTIVE: (402, "the tenant's subscription is not active"),
    RefusalReason.TENANT_UNKNOWN: (404, "the tenant is unknown"),
    RefusalReason.BYOK_KEY_INVALID: (
        429,
        "the tenant's own key is invalid and platform fallback is disabled",
    ),
}
"""The one table of what a refusal means: its HTTP status and its words."""

STATUS_BY_CODE: dict[str, int] = {
    "validation_error": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    **{reason.value: status for reason, (status, _) in REFUSALS.items()},
    "key_store_unavailable": 503,
    "database_unavailable": 503,
    "payment_provider_error": 502,
    "invalid_signature": 400,
    "billing_not_configured": 503,
    "too_many_attempts": 429,
    "overloaded": 503,
}

STATUS_BY_CLASS: tuple[tuple[type[DomainError], int], ...] = (
    (ValidationError, 422),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (KeyStoreUnavailable, 503),
    (DatabaseUnavailable, 503),
    (PaymentProviderError, 502),
    (InvalidSignature, 400),
)

DEFAULT_DOMAIN_STATUS = 400
UNAVAILABLE_RETRY_AFTER_S = 1

_LITESTAR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "service_unavailable",
}


@attrs.define(eq=False)
class AdmissionRefused(DomainError):
    """The gateway's admission was refused; the code names why, ``resets_at`` says when."""

    resets_at: datetime | None = None


def refusal_error(refused: Refused) -> AdmissionRefused:
    """The gateway's answer to a refused admission: its code, words and when it resets."""
    return AdmissionRefused(
        detail=REFUSALS[refused.reason][1], code=refused.reason.value, resets_at=refused.resets_at
    )


def status_for(error: DomainError) -> int:
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    for cls, status in STATUS_BY_CLASS:
        if isinstance(error, cls):
            return status
    return DEFAULT_DOMAIN_STATUS


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    detail: str,
    field: str | None = None,
    resets_at: datetime | None = None,
) -> Response[ErrorBody]:
    request.state.error_code = code
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tierkeeper"'
    if resets_at is not None and status == 429:
        seconds = max(0, int((resets_at - datetime.now(UTC)).total_seconds()))
        headers["Retry-After"] = str(seconds)
    if status == 503:
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_S)
    return Response(
        ErrorBody(code=code, detail=detail, field=field or None, resets_at=resets_at),
        status_code=status,
        headers=headers,
    )


PUBLIC_DETAILS: dict[str, str] = {
    "key_store_unavailable": "the key store cannot be reached right now; retry shortly",
    "payment_provider_error": "the payment provider did not complete the request; retry later",
}
"""What a client is told for failures of our own infrastructure: their adapters' details
name internal hosts, Vault mounts and keys, which belong in the log, not in a response."""


def public_detail(request: Request[Any, Any, Any], exc: DomainError) -> str:
    """The detail a client may see; an infrastructure failure's own detail is logged."""
    generic = PUBLIC_DETAILS.get(exc.code)
    if generic is None:
        return exc.detail
    log.warning("%s on %s %s: %s", exc.code, request.method, request.url.path, exc.detail)
    return generic


def handle_domain_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    assert isinstance(exc, DomainError)
    status = status_for(exc)
    field = getattr(exc, "field", None)
    resets_at = exc.resets_at if isinstance(exc, AdmissionRefused) else None
    detail = public_detail(request, exc)
    response = error_response(request, status, exc.code, detail, field, resets_at)
    retry_after_s = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after_s, int):
        response.headers["Retry-After"] = str(retry_after_s)
    return response


_MSGSPEC_PATH = re.compile(r"at `\$\.([A-Za-z0-9_]+)")
_MISSING_FIELD = re.compile(r"missing required field `([A-Za-z0-9_]+)`")


def _field_of(extra: Any) -> str | None:
    """The input field at fault: Litestar's ``key``, unless it names the whole body, then
    the field a msgspec message names."""
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                message = str(item.get("message", ""))
                for pattern in (_MISSING_FIELD, _MSGSPEC_PATH):
                    match = pattern.search(message)
                    if match:
                        return match.group(1)
                key = item.get("key")
                if key and key != "data":
                    return str(key)
    return None


def _describe_validation(exc: ValidationException, field: str | None) -> str:
    if isinstance(exc.extra, list) and exc.extra and isinstance(exc.extra[0], dict):
        message = str(exc.extra[0].get("message", ""))
        message = message.split(" - at `", 1)[0]
        if message:
            return f"{field}: {message}" if field else message
    return "the request body is not valid JSON of the expected shape"


def handle_validation(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """Litestar's own validation failures (bad JSON, wrong types, bounds) are 422s too."""
    assert isinstance(exc, ValidationException)
    field = _field_of(exc.extra) or "body"
    return error_response(
        request, 422, "validation_error", _describe_validation(exc, field), field=field
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    if status == 400:
        # a body that is not JSON at all: still the client's input at fault
        return error_response(
            request, 422, "validation_error", "the request body is not valid JSON", field="body"
        )
    code = _LITESTAR_CODES.get(status, "bad_request" if status < 500 else "internal_error")
    detail = {
        404: "no such resource",
        405: "method not allowed on this resource",
    }.get(status, exc.detail if isinstance(exc.detail, str) else code.replace("_", " "))
    response = error_response(request, status, code, detail)
    if exc.headers:
        response.headers.update({k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    return response


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    # the frames, not the message: an adapter's message may quote request values
    log.error(
        "unhandled %s on %s %s\n%s",
        type(exc).__name__,
        request.method,
        request.url.path,
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    return error_response(
        request, HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred"
    )


def handle_too_deep(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """A body nested deeper than the decoder recurses (JSON 1,000 arrays deep) is the
    client's input at fault, not ours."""
    log.warning("request body too deeply nested on %s %s", request.method, request.url.path)
    return error_response(
        request, 422, "validation_error", "the request body is nested too deeply", field="body"
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    RecursionError: handle_too_deep,
    DomainError: handle_domain_error,
    ValidationException: handle_validation,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
