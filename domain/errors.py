"""The domain's errors: one base, subclasses with structured fields the callers map."""

from __future__ import annotations

import attrs


@attrs.define(eq=False)
class DomainError(Exception):
    """A broken invariant or bad input, with a stable ``code`` and a human ``detail``."""

    detail: str
    code: str = "domain_error"

    def __str__(self) -> str:
        return self.detail


@attrs.define(eq=False)
class ValidationError(DomainError):
    """One input field is at fault; ``field`` names it."""

    field: str = ""
    code: str = "validation_error"


@attrs.define(eq=False)
class CatalogError(DomainError):
    """The tier/provider catalog contradicts itself (unknown ids, negative caps, duplicates)."""

    code: str = "catalog_error"


@attrs.define(eq=False)
class NotFound(DomainError):
    """The thing asked for does not exist, or is not the caller's to see."""

    code: str = "not_found"


@attrs.define(eq=False)
class Conflict(DomainError):
    """The request contradicts the current state (e.g. an email already signed up)."""

    code: str = "conflict"


@attrs.define(eq=False)
class KeyStoreUnavailable(DomainError):
    """The key store cannot encrypt or decrypt now: unreachable, sealed, wrong secret, tampered."""

    code: str = "key_store_unavailable"


@attrs.define(eq=False)
class DatabaseUnavailable(DomainError):
    """The database cannot be reached now (restarting, failing over, out of connections);
    nothing was acknowledged, so the caller may retry."""

    code: str = "database_unavailable"


@attrs.define(eq=False)
class PaymentProviderError(DomainError):
    """The payment provider refused or failed a request."""

    code: str = "payment_provider_error"


@attrs.define(eq=False)
class InvalidSignature(DomainError):
    """A webhook's signature or timestamp does not verify."""

    code: str = "invalid_signature"


@attrs.define(eq=False)
class Unauthorized(DomainError):
    """No valid credentials were presented."""

    code: str = "unauthorized"


@attrs.define(eq=False)
class Forbidden(DomainError):
    """Valid credentials of the wrong kind for this action."""

    code: str = "forbidden"


@attrs.define(eq=False)
class UpstreamUnreachable(DomainError):
    """An LLM provider could not be reached (network, timeout); the proxy tries the next."""

    code: str = "upstream_unreachable"


@attrs.define(eq=False)
class TooManyAttempts(DomainError):
    """Too many failed attempts from this account or address; try again after
    ``retry_after_s`` seconds."""

    retry_after_s: int = 1
    code: str = "too_many_attempts"


@attrs.define(eq=False)
class Overloaded(DomainError):
    """The service sheds this request to protect itself (e.g. too many password hashes at
    once); try again after ``retry_after_s`` seconds."""

    retry_after_s: int = 1
    code: str = "overloaded"
