"""The composition root: the only module that names concrete adapters.

HTTP, CLI and tests all build their services here from ``Settings``; nothing is built at
import time.
"""

from __future__ import annotations

import attrs

from adapters.catalog.toml_loader import load_catalog
from domain.catalog import Catalog
from entrypoints.settings import Settings


@attrs.frozen
class Services:
    settings: Settings
    catalog: Catalog


def build_catalog(settings: Settings) -> Catalog:
    return load_catalog(settings.catalog_path, settings.environ)


async def build_services(settings: Settings) -> Services:
    return Services(settings=settings, catalog=build_catalog(settings))
