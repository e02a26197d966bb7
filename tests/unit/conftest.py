"""Unit fixtures: the shipped catalog and a world of in-memory ports with the use cases."""

from __future__ import annotations

import tomllib
from datetime import datetime
from typing import Any

import attrs
import pytest

from adapters.catalog.toml_loader import default_catalog_text
from domain.byok import CredentialInput
from domain.catalog import Catalog, build_catalog
from domain.ids import TenantId, TierId, UserId
from domain.notifications import NotificationFacts, NotificationKind
from domain.ports import AuthTokenRepository
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus, Tenant, User
from domain.use_cases.account_changes import AccountChanges
from domain.use_cases.accounts import Accounts
from domain.use_cases.configs import Configs
from domain.use_cases.credentials import Credentials
from domain.use_cases.metering import Metering
from domain.use_cases.notifications import Notifications
from domain.use_cases.tenants import Tenants
from tests.fakes import (
    FakeKeyStore,
    FakePasswordHasher,
    FakeSubscriptionCanceler,
    FixedClock,
    FixedProviderProbe,
    InMemoryAccountMailer,
    InMemoryAccountRepository,
    InMemoryAttemptLog,
    InMemoryAuthTokenRepository,
    InMemoryConfigRemover,
    InMemoryConfigWriter,
    InMemoryCredentialRepository,
    InMemoryNotificationSettings,
    InMemoryOutbox,
    InMemorySubscriptionRepository,
    InMemoryTenantRepository,
    InMemoryUnitOfWork,
    InMemoryUsageLedger,
)

pytestmark = pytest.mark.unit

OPENAI_KEY = "sk-proj-abcdefghijklmnop1234"
ANTHROPIC_KEY = "sk-ant-api03-secretsecretx9Qa"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/unit" in str(item.fspath):
            item.add_marker(pytest.mark.unit)


def catalog_data() -> dict[str, Any]:
    return tomllib.loads(default_catalog_text())


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return build_catalog(catalog_data())


def make_tenant(
    tenant_id: str = "t-1",
    tier: str = "starter",
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    timezone: str = "UTC",
    anchor: int = 1,
    created_at: datetime | None = None,
    **changes: Any,
) -> Tenant:
    tenant = Tenant(
        id=TenantId(tenant_id),
        tier=TierId(tier),
        status=status,
        timezone=timezone,
        billing_anchor_day=anchor,
        created_at=created_at or FixedClock().now(),
    )
    return attrs.evolve(tenant, **changes)


@attrs.define
class World:
    """Every port as an in-memory double, with the use cases assembled over them."""

    catalog: Catalog
    clock: FixedClock = attrs.Factory(FixedClock)
    tenant_repo: InMemoryTenantRepository = attrs.Factory(InMemoryTenantRepository)
    credential_repo: InMemoryCredentialRepository = attrs.Factory(InMemoryCredentialRepository)
    outbox: InMemoryOutbox = attrs.Factory(InMemoryOutbox)
    """What the use cases write through the unit of work, and the ledger the thresholds
    admissions and settlements cross."""
    subscriptions: InMemorySubscriptionRepository = attrs.Factory(InMemorySubscriptionRepository)
    ledger: InMemoryUsageLedger = attrs.Factory(
        lambda self: InMemoryUsageLedger(tenants=self.tenant_repo, outbox=self.outbox),
        takes_self=True,
    )
    key_store: FakeKeyStore = attrs.Factory(FakeKeyStore)
    probe: FixedProviderProbe = attrs.Factory(FixedProviderProbe)
    writer: InMemoryConfigWriter = attrs.Factory(InMemoryConfigWriter)
    attempts: InMemoryAttemptLog = attrs.Factory(InMemoryAttemptLog)
    mailer: InMemoryAccountMailer = attrs.Factory(
        lambda self: InMemoryAccountMailer(self.outbox), takes_self=True
    )
    canceler: FakeSubscriptionCanceler = attrs.Factory(FakeSubscriptionCanceler)
    account_repos: dict[int, InMemoryAccountRepository] = attrs.Factory(dict)

    @property
    def unit_of_work(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(
            self.tenant_repo, self.credential_repo, self.outbox, self.subscriptions
        )

    def account_unit_of_work(self, tokens: AuthTokenRepository) -> InMemoryUnitOfWork:
        """The unit of work the accounts use cases write through, on the account repository
        that shares ``tokens``."""
        return InMemoryUnitOfWork(
            self.tenant_repo, self.credential_repo, self.outbox, self.subscriptions,
            self.account_repo(tokens),
        )  # fmt: skip

    def thresholds(self) -> list[NotificationFacts]:
        """The limit crossings the ledger wrote to the outbox, oldest first."""
        crossings = (NotificationKind.MESSAGES, NotificationKind.TOKENS)
        return [n.facts for n in self.outbox.notes if n.facts.kind in crossings]

    async def written(self) -> list[tuple[str, str | None]]:
        """(kind, provider) of what the use cases wrote to the outbox, oldest first."""
        return [(n.api_kind(), n.facts.provider) for n in self.outbox.notes]

    @property
    def configs(self) -> Configs:
        return Configs(
            self.catalog, self.tenant_repo, self.credential_repo, self.key_store, self.writer
        )

    @property
    def metering(self) -> Metering:
        return Metering(
            self.catalog, self.tenant_repo, self.credential_repo, self.ledger, self.clock
        )  # fmt: skip

    @property
    def credentials(self) -> Credentials:
        return Credentials(
            self.catalog, self.tenant_repo, self.credential_repo, self.key_store, self.probe,
            self.unit_of_work, self.configs, self.clock,
        )  # fmt: skip

    @property
    def notifications(self) -> Notifications:
        """What the tenant use cases word their notifications with (over ``outbox``)."""
        return Notifications(
            self.catalog, self.outbox, InMemoryNotificationSettings(), self.tenant_repo,
            self.credential_repo, self.key_store, self.clock,
        )  # fmt: skip

    @property
    def tenants(self) -> Tenants:
        return Tenants(
            self.catalog, self.tenant_repo, self.credential_repo, self.configs, self.clock,
            unit_of_work=self.unit_of_work, notifications=self.notifications,
        )  # fmt: skip

    def accounts(self, tokens: AuthTokenRepository) -> Accounts:
        """The accounts use case over ``tokens`` (tests that watch the token lookups pass
        their own repository)."""
        return Accounts(
            self.catalog, self.tenant_repo, tokens, FakePasswordHasher(), self.configs,
            self.clock, self.attempts, self.account_repo(tokens), self.mailer,
            "https://tierkeeper.example",
            unit_of_work=self.account_unit_of_work(tokens),
        )  # fmt: skip

    def account_repo(self, tokens: AuthTokenRepository) -> InMemoryAccountRepository:
        """One account repository per token repository, so both share their state."""
        assert isinstance(tokens, InMemoryAuthTokenRepository)
        found = self.account_repos.get(id(tokens))
        if found is None:
            found = InMemoryAccountRepository(self.tenant_repo, tokens)
            self.account_repos[id(tokens)] = found
        return found

    def account_changes(self, tokens: AuthTokenRepository) -> AccountChanges:
        return AccountChanges(
            self.accounts(tokens), self.tenant_repo, tokens, self.account_repo(tokens),
            FakePasswordHasher(), self.credential_repo,
            InMemoryConfigRemover(self.writer), self.canceler, self.clock,
            "https://tierkeeper.example",
        )  # fmt: skip

    async def add_tenant(self, tenant_id: str = "t-1", **kwargs: Any) -> Tenant:
        tenant = make_tenant(tenant_id, created_at=self.clock.now(), **kwargs)
        user = User(UserId(f"u-{tenant_id}"), f"{tenant_id}@example.com", "hash", tenant.id,
                    self.clock.now())  # fmt: skip
        await self.tenant_repo.add(tenant, user)
        return tenant

    async def add_key(
        self,
        tenant_id: str = "t-1",
        provider: str = "openai",
        key: str = OPENAI_KEY,
        model: str = "gpt-4.1",
        allow_platform_fallback: bool | None = None,
    ) -> None:
        await self.credentials.put(
            TenantId(tenant_id),
            UserId(f"u-{tenant_id}"),
            CredentialInput(provider, model, Secret(key), allow_platform_fallback),
        )


@pytest.fixture
def world(catalog: Catalog) -> World:
    return World(catalog)
