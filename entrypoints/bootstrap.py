"""The composition root: the only module that names concrete adapters.

HTTP, CLI and tests all build their services here from ``Settings``; nothing is built at
import time. ``Services`` holds the ports and the use cases built over them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from adapters.catalog.toml_loader import load_catalog
from domain.catalog import Catalog
from domain.ports import (
    AuthTokenRepository,
    BillingGateway,
    Clock,
    ConfigWriter,
    CredentialRepository,
    KeyStore,
    Notifier,
    ProcessedEventRepository,
    ProviderProbe,
    TenantRepository,
    UsageLedger,
)
from domain.use_cases.configs import Configs
from domain.use_cases.credentials import Credentials
from domain.use_cases.metering import Metering
from domain.use_cases.tenants import Tenants
from entrypoints.settings import Settings


@attrs.frozen
class Ports:
    """The adapters behind every port, as chosen by settings (or by a test)."""

    clock: Clock
    tenants: TenantRepository
    credentials: CredentialRepository
    ledger: UsageLedger
    auth_tokens: AuthTokenRepository
    processed_events: ProcessedEventRepository
    notifier: Notifier
    key_store: KeyStore
    probe: ProviderProbe
    config_writer: ConfigWriter
    billing: BillingGateway | None


@attrs.frozen
class Services:
    settings: Settings
    catalog: Catalog
    ports: Ports
    configs: Configs
    credentials: Credentials
    metering: Metering
    tenants: Tenants
    close: Callable[[], Awaitable[None]]


def build_catalog(settings: Settings) -> Catalog:
    return load_catalog(settings.catalog_path, settings.environ)


def assemble(
    settings: Settings,
    catalog: Catalog,
    ports: Ports,
    close: Callable[[], Awaitable[None]],
) -> Services:
    """Build the use cases over a set of ports; the same for production and tests."""
    configs = Configs(
        catalog, ports.tenants, ports.credentials, ports.key_store, ports.config_writer
    )
    return Services(
        settings=settings,
        catalog=catalog,
        ports=ports,
        configs=configs,
        credentials=Credentials(
            catalog,
            ports.tenants,
            ports.credentials,
            ports.key_store,
            ports.probe,
            ports.notifier,
            configs,
            ports.clock,
        ),  # fmt: skip
        metering=Metering(
            catalog, ports.tenants, ports.credentials, ports.ledger, ports.notifier, ports.clock
        ),
        tenants=Tenants(catalog, ports.tenants, ports.credentials, configs, ports.clock),
        close=close,
    )


def build_config_writer(settings: Settings) -> ConfigWriter:
    """Tenants' OpenClaw files, one directory each under ``TIERKEEPER_CONFIG_ROOT``."""
    from adapters.openclaw.writer import FileConfigWriter

    return FileConfigWriter(settings.config_root)
