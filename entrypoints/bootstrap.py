"""The composition root: the only module that names concrete adapters.

HTTP, CLI and tests all build their services here from ``Settings``; nothing is built at
import time. ``Services`` holds the ports and the use cases built over them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from adapters.catalog.toml_loader import load_catalog
from adapters.sql.pool_usage import PoolUsage
from domain.billing import build_price_book
from domain.catalog import Catalog
from domain.errors import ValidationError
from domain.ports import (
    AccountMailer,
    AccountRepository,
    AttemptLog,
    AuditLog,
    AuthTokenRepository,
    BillingGateway,
    Clock,
    ConfigRemover,
    ConfigWriter,
    CredentialRepository,
    KeyStore,
    LlmUpstream,
    MailSender,
    MessageCounter,
    NotificationSettingsRepository,
    Outbox,
    PaidInvoiceRepository,
    PasswordHasher,
    ProcessedEventRepository,
    ProviderProbe,
    SubscriptionCanceler,
    SubscriptionRepository,
    TenantDirectory,
    TenantRepository,
    UnitOfWork,
    UsageLedger,
    VirtualKeyRepository,
    WebhookParser,
    WebhookPoster,
)
from domain.use_cases.account_changes import AccountChanges
from domain.use_cases.accounts import Accounts
from domain.use_cases.billing import Billing
from domain.use_cases.config_documents import ConfigDocuments
from domain.use_cases.configs import Configs, ProxyMode
from domain.use_cases.credentials import Credentials
from domain.use_cases.key_store_set import KeyStoreSet
from domain.use_cases.llm_proxy import LlmProxy
from domain.use_cases.metering import Metering, MeteringCaches
from domain.use_cases.notifications import Deliverer, Notifications
from domain.use_cases.operations import Operations
from domain.use_cases.readiness import Readiness
from domain.use_cases.tenants import Tenants
from domain.use_cases.usage_history import UsageHistory
from domain.use_cases.virtual_keys import VirtualKeys
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from adapters.sql.database import SqlDatabase


@attrs.frozen
class Ports:
    """The adapters behind every port, as chosen by settings (or by a test)."""

    clock: Clock
    tenants: TenantRepository
    credentials: CredentialRepository
    ledger: UsageLedger
    auth_tokens: AuthTokenRepository
    processed_events: ProcessedEventRepository
    key_store: KeyStore
    probe: ProviderProbe
    config_writer: ConfigWriter
    billing: BillingGateway | None
    password_hasher: PasswordHasher = attrs.field(factory=lambda: _default_password_hasher())
    virtual_keys: VirtualKeyRepository | None = None
    llm_upstream: LlmUpstream | None = None
    audit: AuditLog = attrs.field(kw_only=True)
    directory: TenantDirectory = attrs.field(kw_only=True)
    unit_of_work: UnitOfWork = attrs.field(kw_only=True)
    """Changes and the notifications they cause, in one transaction."""
    database_pools: Callable[[], Sequence[PoolUsage]] = attrs.field(default=list, kw_only=True)
    """The database's connection pools as they are now (for the metrics)."""
    subscriptions: SubscriptionRepository | None = None
    """Subscription records; needed (with ``paid_invoices``) wherever billing is offered."""
    paid_invoices: PaidInvoiceRepository | None = None
    message_counts: MessageCounter | None = None
    """Admitted, settled and expired messages for the usage report."""
    outbox: Outbox = attrs.field(kw_only=True)
    """The notifications outbox; with the three below it gives ``Services.notifications``."""
    notification_settings: NotificationSettingsRepository | None = None
    mail: MailSender | None = None
    webhook_poster: WebhookPoster | None = None
    accounts: AccountPorts | None = None
    """Throttling, account changes and mail, deletion's helpers; see ``AccountPorts``."""


@attrs.frozen
class AccountPorts:
    """The ports only the accounts use cases need."""

    attempts: AttemptLog
    store: AccountRepository
    mailer: AccountMailer
    config_remover: ConfigRemover
    canceler: SubscriptionCanceler | None


@attrs.frozen
class Services:
    settings: Settings
    catalog: Catalog
    ports: Ports
    configs: Configs
    credentials: Credentials
    metering: Metering
    tenants: Tenants
    accounts: Accounts
    account_changes: AccountChanges
    close: Callable[[], Awaitable[None]]
    notifications: Notifications
    """In-app notifications, channel settings, tenant events and account mail."""
    billing: Billing | None = None
    """Checkout and subscription events; None when no payment provider is configured."""
    webhooks: WebhookParser | None = None
    """Verifies and parses the payment provider's webhooks; None without a webhook secret."""
    deliverer: Deliverer | None = None
    """Sends due notifications (the task inside ``serve``, ``notifications deliver``)."""
    llm_proxy: LlmProxy | None = None
    """The metering LLM proxy (spec §13); None without virtual keys and an upstream client."""
    operations: Operations = attrs.field(kw_only=True)
    """The operator's tenant search and tenant report."""
    usage_history: UsageHistory | None = None
    """A tenant's settled usage by day or model (the history page and its API)."""
    config_documents: ConfigDocuments = attrs.field(kw_only=True)
    """The OpenClaw document the gateway fetches (decrypts nothing)."""
    readiness: Readiness = attrs.field(kw_only=True)
    """Whether the database and the key store answer (``/readyz``)."""


def _default_password_hasher() -> PasswordHasher:
    from adapters.security.passwords import Argon2PasswordHasher

    return bounded(Argon2PasswordHasher())


def bounded(hasher: PasswordHasher) -> PasswordHasher:
    """At most a few password hashes at a time; the rest wait briefly or are shed."""
    from adapters.security.bounded import BoundedPasswordHasher

    return BoundedPasswordHasher(hasher)


def build_catalog(settings: Settings) -> Catalog:
    return load_catalog(settings.catalog_path, settings.environ)


def assemble(
    settings: Settings,
    catalog: Catalog,
    ports: Ports,
    close: Callable[[], Awaitable[None]],
    webhooks: WebhookParser | None = None,
) -> Services:
    """Build the use cases over a set of ports; the same for production and tests."""
    virtual_keys = (
        VirtualKeys(ports.virtual_keys, ports.key_store, ports.clock)
        if ports.virtual_keys is not None
        else None
    )
    notifications = build_notifications(catalog, ports)
    proxy_mode = (
        ProxyMode(settings.proxy_url, virtual_keys)
        if settings.openclaw_mode == "proxy" and virtual_keys is not None
        else None
    )
    configs = Configs(
        catalog, ports.tenants, ports.credentials, ports.key_store, ports.config_writer, proxy_mode
    )
    metering = Metering(
        catalog,
        ports.tenants,
        ports.credentials,
        ports.ledger,
        ports.clock,
        caches=MeteringCaches(),
    )
    credentials = Credentials(
        catalog,
        ports.tenants,
        ports.credentials,
        ports.key_store,
        ports.probe,
        ports.unit_of_work,
        configs,
        ports.clock,
        audit=ports.audit,
    )
    llm_proxy = None
    if virtual_keys is not None and ports.llm_upstream is not None:
        llm_proxy = LlmProxy(
            catalog=catalog,
            virtual_keys=virtual_keys,
            metering=metering,
            credentials=credentials,
            stored_credentials=ports.credentials,
            tenants=ports.tenants,
            key_store=ports.key_store,
            upstream=ports.llm_upstream,
            platform_keys=dict(settings.platform_keys),
        )

    async def close_all() -> None:
        """Settlements still running (whole answers settle off the latency path; streams
        whose callers left) finish before the ports close."""
        if llm_proxy is not None:
            await llm_proxy.drain()
        await close()

    if ports.accounts is None:
        raise ValidationError("the accounts' ports are required", field="accounts")
    account_ports = ports.accounts
    accounts = Accounts(
        catalog,
        ports.tenants,
        ports.auth_tokens,
        ports.password_hasher,
        configs,
        ports.clock,
        account_ports.attempts,
        account_ports.store,
        account_ports.mailer,
        settings.public_url,
        audit=ports.audit,
        unit_of_work=ports.unit_of_work,
    )
    return Services(
        settings=settings,
        catalog=catalog,
        ports=ports,
        configs=configs,
        credentials=credentials,
        metering=metering,
        tenants=Tenants(
            catalog,
            ports.tenants,
            ports.credentials,
            configs,
            ports.clock,
            unit_of_work=ports.unit_of_work,
            notifications=notifications,
            audit=ports.audit,
        ),
        close=close_all,
        accounts=accounts,
        account_changes=AccountChanges(
            accounts,
            ports.tenants,
            ports.auth_tokens,
            account_ports.store,
            ports.password_hasher,
            ports.credentials,
            account_ports.config_remover,
            account_ports.canceler,
            ports.clock,
            settings.public_url,
        ),
        billing=None
        if ports.billing is None or ports.subscriptions is None or ports.paid_invoices is None
        else Billing(
            catalog,
            build_price_book(catalog, settings.stripe_prices),
            ports.tenants,
            ports.processed_events,
            ports.billing,
            configs,
            ports.clock,
            settings.public_url,
            audit=ports.audit,
            subscriptions=ports.subscriptions,
            invoices=ports.paid_invoices,
            unit_of_work=ports.unit_of_work,
            notifications=notifications,
        ),
        webhooks=webhooks,
        notifications=notifications,
        deliverer=build_deliverer(settings, catalog, ports),
        llm_proxy=llm_proxy,
        operations=Operations(
            catalog, ports.directory, ports.credentials, metering, ports.audit, ports.outbox
        ),
        usage_history=UsageHistory(ports.tenants, ports.ledger, ports.clock),
        config_documents=ConfigDocuments(
            catalog,
            ports.tenants,
            ports.credentials,
            ports.config_writer,
            ports.clock,
            proxy_mode.url if proxy_mode is not None else None,
        ),
        readiness=Readiness(ports.tenants, ports.ledger, ports.key_store),
    )


def build_notifications(catalog: Catalog, ports: Ports) -> Notifications:
    """The notifications use case over the outbox (tier changes write theirs through it)."""
    if ports.notification_settings is None:
        raise ValidationError(
            "the notification settings are required", field="notification_settings"
        )
    return Notifications(
        catalog,
        ports.outbox,
        ports.notification_settings,
        ports.tenants,
        ports.credentials,
        ports.key_store,
        ports.clock,
    )


def build_deliverer(settings: Settings, catalog: Catalog, ports: Ports) -> Deliverer | None:
    if ports.notification_settings is None or ports.mail is None or ports.webhook_poster is None:
        return None
    return Deliverer(
        catalog,
        ports.outbox,
        ports.notification_settings,
        ports.tenants,
        ports.key_store,
        ports.mail,
        ports.webhook_poster,
        ports.clock,
        settings.public_url,
        settings.mail_from,
    )


def build_mail_sender(settings: Settings) -> MailSender:
    """SMTP when ``TIERKEEPER_SMTP_URL`` is set; otherwise ``.eml`` files under
    ``var/mail``, so the embedded default needs no mail server."""
    from adapters.notify.mail import EmlFileMailSender, SmtpMailSender, parse_smtp_url

    if settings.smtp_url is None:
        return EmlFileMailSender(settings.var_dir / "mail")
    return SmtpMailSender(parse_smtp_url(settings.smtp_url))


def build_config_writer(settings: Settings) -> ConfigWriter:
    """Tenants' OpenClaw files, one directory each under ``TIERKEEPER_CONFIG_ROOT``."""
    from adapters.openclaw.writer import FileConfigWriter

    return FileConfigWriter(settings.config_root)


def build_key_store(settings: Settings, kind: str) -> KeyStore:
    """The Fernet (platform secrets) or Vault transit (token or AppRole) key store."""
    if kind == "fernet":
        from adapters.keystores.fernet import FernetKeyStore

        return FernetKeyStore(settings.fernet_secrets())
    if kind == "vault":
        from adapters.keystores.vault import VaultTransitKeyStore

        if not settings.vault_addr:
            raise ValidationError(
                "TIERKEEPER_VAULT_ADDR is required for the vault key store",
                field="TIERKEEPER_VAULT_ADDR",
            )
        return VaultTransitKeyStore(
            settings.vault_addr,
            token=settings.vault_token,
            role_id=settings.vault_role_id,
            secret_id=settings.vault_secret_id,
            transit_key=settings.vault_transit_key,
        )
    raise ValidationError(f"unknown key store {kind!r}", field="TIERKEEPER_KEY_STORE")


def build_key_stores(settings: Settings, also: Sequence[str] = ()) -> KeyStoreSet:
    """The ``TIERKEEPER_KEY_STORE`` store encrypts; every other configured store (Vault when
    its address is set, Fernet when a platform secret is set or was generated) and those named
    in ``also`` still decrypt their own keys, so a move between stores needs no downtime."""
    names = [settings.key_store, *also]
    if settings.vault_addr:
        names.append("vault")
    if settings.secret_keys or (settings.var_dir / "secret_key").exists():
        names.append("fernet")
    unique = list(dict.fromkeys(names))
    active, *others = (build_key_store(settings, name) for name in unique)
    # mypy's attrs plugin types a converter=tuple parameter as Iterable[_T_co], never solved
    return KeyStoreSet(active, tuple(others))  # type: ignore[arg-type]  # attrs converter=tuple


async def build_services(
    settings: Settings,
    *,
    probe_timeout_s: float = 5.0,
    migrate: bool = False,
    password_hasher: PasswordHasher | None = None,
) -> Services:
    """The real adapters chosen by settings: the SQL database (SQLite or PostgreSQL), the key
    stores, the OpenClaw file writer, the httpx provider probe, Stripe when its API key is
    set, argon2 password hashing, the system clock. ``migrate`` brings the schema to the
    newest revision first; a test may pass a cheaper ``password_hasher``. ``close()``
    releases the database's connections."""
    from adapters.llm.aiohttp_upstream import AiohttpLlmUpstream
    from adapters.probe.httpx_probe import HttpxProviderProbe
    from adapters.sql.database import open_database
    from adapters.system_clock import SystemClock

    catalog = build_catalog(settings)
    key_stores = build_key_stores(settings)
    from adapters.notify.webhooks import HttpxWebhookPoster

    database = await open_database(settings.database_url, migrate=migrate)
    clock = SystemClock()
    notifications = Notifications(
        catalog,
        database.outbox,
        database.notification_settings,
        database.tenants,
        database.credentials,
        key_stores,
        clock,
    )
    ports = Ports(
        clock=clock,
        tenants=database.tenants,
        credentials=database.credentials,
        ledger=database.ledger,
        auth_tokens=database.auth_tokens,
        processed_events=database.processed_events,
        key_store=key_stores,
        probe=HttpxProviderProbe(timeout_s=probe_timeout_s),
        config_writer=build_config_writer(settings),
        billing=build_billing_gateway(settings),
        password_hasher=bounded(password_hasher) if password_hasher else _default_password_hasher(),
        virtual_keys=database.virtual_keys,
        llm_upstream=(upstream := AiohttpLlmUpstream()),
        accounts=build_account_ports(settings, database, notifications),
        audit=database.audit,
        directory=database.directory,
        unit_of_work=database.unit_of_work,
        database_pools=database.pool_usage,
        subscriptions=database.subscriptions,
        paid_invoices=database.paid_invoices,
        message_counts=database.message_counts,
        outbox=database.outbox,
        notification_settings=database.notification_settings,
        mail=build_mail_sender(settings),
        webhook_poster=HttpxWebhookPoster(allow_private=settings.webhook_allow_private),
    )

    async def close() -> None:
        await upstream.aclose()
        await database.close()

    return assemble(settings, catalog, ports, close, build_webhook_parser(settings))


def build_account_ports(
    settings: Settings, database: SqlDatabase, notifications: Notifications
) -> AccountPorts:
    """Attempt counts and account changes in the database, account mail through the
    notifications outbox (delivered by the deliverer), config removal under the config
    root, Stripe cancellation when Stripe is configured."""
    from adapters.openclaw.remover import FileConfigRemover
    from adapters.sql.accounts import SqlAccountRepository, SqlAttemptLog
    from adapters.sql.connections import EngineConnections
    from domain.use_cases.account_mail import NotificationsAccountMailer

    return AccountPorts(
        attempts=SqlAttemptLog(EngineConnections(database.engine)),
        store=SqlAccountRepository(EngineConnections(database.engine)),
        mailer=NotificationsAccountMailer(notifications, database.tenants),
        config_remover=FileConfigRemover(settings.config_root),
        canceler=build_subscription_canceler(settings),
    )


def build_subscription_canceler(settings: Settings) -> SubscriptionCanceler | None:
    if settings.stripe_api_key is None:
        return None
    from adapters.billing.cancel import StripeSubscriptionCanceler
    from adapters.billing.stripe_gateway import build_stripe_client

    client = build_stripe_client(settings.stripe_api_key, settings.stripe_api_base)
    return StripeSubscriptionCanceler(client)


def build_billing_gateway(settings: Settings) -> BillingGateway | None:
    """Stripe when ``TIERKEEPER_STRIPE_API_KEY`` is set; otherwise no checkout is offered."""
    if settings.stripe_api_key is None:
        return None
    from adapters.billing.stripe_gateway import StripeBillingGateway, build_stripe_client

    client = build_stripe_client(settings.stripe_api_key, settings.stripe_api_base)
    return StripeBillingGateway(client)


def build_webhook_parser(settings: Settings) -> WebhookParser | None:
    """Stripe's signed webhooks when ``TIERKEEPER_STRIPE_WEBHOOK_SECRET`` is set."""
    if settings.stripe_webhook_secret is None:
        return None
    from adapters.billing.webhooks import StripeWebhookParser

    return StripeWebhookParser(settings.stripe_webhook_secret)
