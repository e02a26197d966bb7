"""The app over its test client, on the real embedded adapters: a SQLite file (migrated once
per session and copied per test), Fernet, OpenClaw files in a temporary directory, the httpx
probe against a local provider stub, and Stripe's adapters pointed at nothing (checkout fails
as a payment provider error; webhooks are verified with a test secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar.testing import AsyncTestClient

from adapters.catalog.toml_loader import load_catalog
from adapters.security.passwords import Argon2PasswordHasher
from adapters.sql.database import upgrade
from domain.catalog import Catalog
from domain.ids import TenantId
from domain.tenants import SubscriptionStatus
from entrypoints.bootstrap import Services, build_services
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.support.provider_stub import ProviderStub, refused_url, running_provider_stub

pytestmark = pytest.mark.http

WEBHOOK_SECRET = "whsec_test_tierkeeper"
PROBE_TIMEOUT_S = 0.5
TEST_PASSWORD_HASHER = Argon2PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
"""The real argon2 adapter at a test-sized cost; production keeps argon2-cffi's profile."""
PASSWORD = "correct horse battery"
KEYS = {
    "openai": "sk-test0123456789abcdef",
    "anthropic": "sk-ant-test0123456789abcd",
    "groq": "gsk_test0123456789abcdef",
    "google": "AIzaTest0123456789abcdef",
    "openrouter": "sk-or-test0123456789abcd",
}


def key_for(provider: str, marker: str = "") -> str:
    return KEYS[provider] + marker


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def provider_stub(catalog: Catalog) -> Iterator[ProviderStub]:
    with running_provider_stub(catalog, slow_s=PROBE_TIMEOUT_S * 4) as stub:
        yield stub


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tierkeeper.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


def http_environ(
    tmp_path: Path, template: Path, stub: ProviderStub, **extra: str
) -> dict[str, str]:
    database = tmp_path / "tierkeeper.sqlite3"
    shutil.copy(template, database)
    return {
        "TIERKEEPER_VAR_DIR": str(tmp_path / "var"),
        "TIERKEEPER_DATABASE_URL": f"sqlite:///{database}",
        "TIERKEEPER_CONFIG_ROOT": str(tmp_path / "openclaw"),
        "TIERKEEPER_SECRET_KEY": "http-test-platform-secret-0123456789",
        "TIERKEEPER_STRIPE_API_KEY": "sk_test_http_unreachable",
        "TIERKEEPER_STRIPE_API_BASE": refused_url(),
        "TIERKEEPER_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TIERKEEPER_STRIPE_PRICE_STARTER": "price_starter_test",
        "TIERKEEPER_STRIPE_PRICE_PREMIUM": "price_premium_test",
        "TIERKEEPER_STRIPE_PRICE_BYOK": "price_byok_test",
        **stub.provider_env(refused=("groq",)),
        **extra,
    }


@pytest.fixture
def environ(tmp_path: Path, sqlite_template: Path, provider_stub: ProviderStub) -> dict[str, str]:
    return http_environ(tmp_path, sqlite_template, provider_stub)


@pytest.fixture
async def services(environ: Mapping[str, str]) -> AsyncIterator[Services]:
    built = await build_services(
        Settings.from_environ(environ),
        probe_timeout_s=PROBE_TIMEOUT_S,
        password_hasher=TEST_PASSWORD_HASHER,
    )
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def client(services: Services) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(services)) as test_client:
        yield test_client


@attrs.frozen
class Customer:
    token: str
    tenant_id: TenantId
    user_id: str
    email: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


_counter = iter(range(1_000_000))


async def sign_up(client: AsyncTestClient[Any], email: str | None = None) -> Customer:
    address = email or f"user{next(_counter)}-{time.monotonic_ns()}@example.com"
    response = await client.post(
        "/api/v1/auth/signup", json={"email": address, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    client.cookies.clear()
    return Customer(body["token"], TenantId(body["tenant"]["id"]), body["user"]["id"], address)


@pytest.fixture
async def customer(client: AsyncTestClient[Any]) -> Customer:
    return await sign_up(client)


@pytest.fixture
async def service_headers(services: Services) -> dict[str, str]:
    token = await services.accounts.create_service_token("gateway-test")
    return {"Authorization": f"Bearer {token.reveal()}"}


async def make_active(services: Services, tenant_id: TenantId, tier: str = "starter") -> None:
    await services.tenants.change_tier(tenant_id, tier, SubscriptionStatus.ACTIVE)


def stripe_signature(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(event_id: str, event_type: str, obj: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": dict(obj)},
        }
    ).encode()
