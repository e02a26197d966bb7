"""Bring your own key: the stored credential, input validation, and masking.

The raw key only ever travels as a ``Secret``; stored, it is ciphertext made by a key store.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime

import attrs

from domain.catalog import ByokProvider, Catalog
from domain.errors import ValidationError
from domain.ids import ProviderId, TenantId, UserId
from domain.secrets import Secret

MAX_KEY_LENGTH = 512
KEY_FORBIDDEN = "'\"`\\"
"""Characters no provider key holds; refused so every valid key can be written to .env."""
MASK_TAIL = 4
ELLIPSIS = "…"


class KeyStatus(enum.Enum):
    UNVERIFIED = "unverified"
    VALID = "valid"
    INVALID = "invalid"


@attrs.frozen
class Ciphertext:
    """An encrypted key and which store and key version made it (for rotation and moves)."""

    store: str
    key_version: int
    token: str


@attrs.frozen
class StoredCredential:
    """A tenant's BYOK credential as persisted: never the plaintext key."""

    tenant_id: TenantId
    user_id: UserId
    provider: ProviderId
    model_preference: str
    ciphertext: Ciphertext
    key_mask: str
    status: KeyStatus
    allow_platform_fallback: bool
    created_at: datetime
    updated_at: datetime
    last_verified_at: datetime | None = None
    last_error: str | None = None

    def usable(self) -> bool:
        """Valid and not-yet-verified keys are used; invalid ones are not."""
        return self.status is not KeyStatus.INVALID


def mask_key(provider: ByokProvider, key: Secret) -> str:
    """The provider's prefix, an ellipsis, and the last four characters (``sk-ant-…x9Qa``).
    A key too short to spare four characters after its prefix shows no tail at all."""
    raw = key.reveal()
    tail = raw[-MASK_TAIL:] if len(raw) >= len(provider.key_prefix) + 2 * MASK_TAIL else ""
    return f"{provider.key_prefix}{ELLIPSIS}{tail}"


def validate_api_key(provider: ByokProvider, key: Secret) -> None:
    """Non-empty, no whitespace or control characters, ASCII without quotes or backslashes,
    at most 512 characters, and of the provider's shape. The message names the field, never
    the key."""
    raw = key.reveal()
    if not raw:
        raise ValidationError("api_key must not be empty", field="api_key")
    if len(raw) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"api_key is longer than {MAX_KEY_LENGTH} characters", field="api_key"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in raw):
        raise ValidationError(
            "api_key must not contain spaces, newlines or control characters", field="api_key"
        )
    if not raw.isascii():
        # a provider key is ASCII, and an HTTP header cannot carry anything else
        raise ValidationError("api_key must contain only ASCII characters", field="api_key")
    if any(ch in raw for ch in KEY_FORBIDDEN):
        # no provider issues them, and the tenant's .env could not carry them verbatim
        raise ValidationError("api_key must not contain quotes or backslashes", field="api_key")
    if not raw.startswith(provider.key_prefix) or len(raw) <= len(provider.key_prefix):
        raise ValidationError(
            f"api_key does not look like a {provider.name} key ({provider.key_hint})",
            field="api_key",
        )


def validate_model(provider: ByokProvider, model: str) -> str:
    """A model the provider lists; OpenRouter also takes any ``vendor/model`` id."""
    cleaned = model.strip()
    if any(m.id == cleaned for m in provider.models):
        return cleaned
    if provider.accepts_any_model and _is_vendor_model(cleaned):
        return cleaned
    hint = "a vendor/model id" if provider.accepts_any_model else "one of its listed models"
    raise ValidationError(
        f"model_preference {model!r} is not a {provider.name} model; choose {hint}",
        field="model_preference",
    )


_VENDOR_MODEL = re.compile(r"[a-z0-9_.:-]+/[a-z0-9_.:/-]+")
"""``vendor/name`` in lower case: letters, digits and ``-_.:/``."""


def _is_vendor_model(model: str) -> bool:
    return len(model) <= 200 and _VENDOR_MODEL.fullmatch(model.lower()) is not None


@attrs.frozen
class CredentialInput:
    """What a customer submits; ``api_key`` None means: keep the stored key."""

    provider: str
    model_preference: str
    api_key: Secret | None
    allow_platform_fallback: bool | None


@attrs.frozen
class ValidatedCredential:
    provider: ByokProvider
    model_preference: str
    api_key: Secret | None
    allow_platform_fallback: bool | None


def validate_credential_input(
    catalog: Catalog, submitted: CredentialInput, stored: StoredCredential | None
) -> ValidatedCredential:
    """Known provider, known model, well-shaped key. The key may be omitted only when a key
    for the same provider is already stored (changing only the model keeps it)."""
    provider = catalog.byok_provider(submitted.provider.strip().lower())
    model = validate_model(provider, submitted.model_preference)
    if submitted.api_key is None:
        if stored is None or stored.provider != provider.id:
            raise ValidationError(
                f"api_key is required: no {provider.name} key is stored", field="api_key"
            )
    else:
        validate_api_key(provider, submitted.api_key)
    return ValidatedCredential(
        provider=provider,
        model_preference=model,
        api_key=submitted.api_key,
        allow_platform_fallback=submitted.allow_platform_fallback,
    )


class ProbeResult(enum.Enum):
    VALID = "valid"
    INVALID_KEY = "invalid_key"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"


@attrs.frozen
class ProbeOutcome:
    result: ProbeResult
    detail: str
    latency_ms: int


def classify_probe_status(status_code: int | None) -> ProbeResult:
    """401/403 mean a bad key; 429 rate limited; 2xx valid; anything else (5xx, network,
    timeout: None) unreachable."""
    if status_code is None:
        return ProbeResult.UNREACHABLE
    if status_code in (401, 403):
        return ProbeResult.INVALID_KEY
    if status_code == 429:
        return ProbeResult.RATE_LIMITED
    if 200 <= status_code < 300:
        return ProbeResult.VALID
    return ProbeResult.UNREACHABLE


def status_after_probe(current: KeyStatus, result: ProbeResult) -> KeyStatus:
    """A probe proves a key valid or invalid; rate limits and outages prove nothing."""
    if result is ProbeResult.VALID:
        return KeyStatus.VALID
    if result is ProbeResult.INVALID_KEY:
        return KeyStatus.INVALID
    return current


def is_auth_failure(status_code: int) -> bool:
    """The gateway's provider errors that mean the key itself is bad."""
    return status_code in (401, 403)
