"""Stored BYOK credentials in bulk, for the key store jobs' tests."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from domain.byok import Ciphertext, KeyStatus, StoredCredential
from domain.ids import ProviderId, TenantId, TierId, UserId
from domain.ports import CredentialRepository, KeyStore, TenantRepository
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus, Tenant, User

CREATED_AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def api_key_for(n: int) -> Secret:
    """A distinct, well-shaped Anthropic key per tenant number."""
    return Secret(f"sk-ant-api03-tenant{n:06d}-{n * 7919:012d}Qa")


def tenant_id_for(n: int) -> TenantId:
    return TenantId(f"t-{n:06d}")


def stored_credential(n: int, ciphertext: Ciphertext) -> StoredCredential:
    return StoredCredential(
        tenant_id=tenant_id_for(n),
        user_id=UserId(f"u-{n:06d}"),
        provider=ProviderId("anthropic"),
        model_preference="claude-sonnet-4-5",
        ciphertext=ciphertext,
        key_mask=f"sk-ant-…{api_key_for(n).reveal()[-4:]}",
        status=KeyStatus.VALID,
        allow_platform_fallback=True,
        created_at=CREATED_AT,
        updated_at=CREATED_AT,
    )


async def store_credentials(
    repository: CredentialRepository, store: KeyStore, numbers: range, concurrency: int = 8
) -> None:
    """Encrypt each tenant's key with ``store`` (a few at a time) and put it in the
    repository."""

    async def put(n: int) -> None:
        await repository.put(stored_credential(n, await store.encrypt(api_key_for(n))))

    for start in range(0, len(numbers), concurrency):
        await asyncio.gather(*(put(n) for n in numbers[start : start + concurrency]))


async def add_tenants(repository: TenantRepository, numbers: range) -> None:
    """The tenants (and first users) the credentials belong to, for storages that check."""
    for n in numbers:
        tenant = Tenant(
            id=tenant_id_for(n),
            tier=TierId("byok"),
            status=SubscriptionStatus.ACTIVE,
            timezone="UTC",
            billing_anchor_day=1,
            created_at=CREATED_AT,
        )
        user = User(
            id=UserId(f"u-{n:06d}"),
            email=f"user{n:06d}@example.com",
            password_hash="argon2$not-a-real-hash",
            tenant_id=tenant.id,
            created_at=CREATED_AT,
        )
        await repository.add(tenant, user)


KEY_PATTERNS = ("sk-ant-api03-", base64.b64encode(b"sk-ant-api03-").decode()[:16])


@pytest.fixture
def keys_never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Captures every log record of the test (DEBUG and up, hvac and urllib3 included) and
    fails it if any shows a key, plain or base64 (as Vault's transit API receives it)."""
    caplog.set_level(logging.DEBUG)
    yield
    formatter = logging.Formatter()
    logged = "\n".join(
        formatter.format(record)
        for phase in ("setup", "call")
        for record in caplog.get_records(phase)  # type: ignore[arg-type]
    )
    assert [pattern for pattern in KEY_PATTERNS if pattern in logged] == []
