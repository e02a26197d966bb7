"""Reads the catalog TOML (shipped, or an operator's replacement) and applies URL overrides."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import attrs

from domain.catalog import Catalog, build_catalog
from domain.errors import CatalogError


def default_catalog_text() -> str:
    return resources.files("adapters.catalog").joinpath("default_catalog.toml").read_text("utf-8")


def load_catalog(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Catalog:
    """The shipped catalog, or the file at ``path``, with ``TIERKEEPER_PROVIDER_<ID>_BASE_URL``
    overrides applied to BYOK and platform providers."""
    text = default_catalog_text() if path is None else _read(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"catalog {path or 'default'} is not valid TOML: {exc}") from None
    return with_base_url_overrides(build_catalog(data), environ or {})


def with_base_url_overrides(catalog: Catalog, environ: Mapping[str, str]) -> Catalog:
    providers = tuple(
        attrs.evolve(p, base_url=environ[key].rstrip("/"))
        if (key := f"TIERKEEPER_PROVIDER_{p.id.upper()}_BASE_URL") in environ
        else p
        for p in catalog.byok_providers
    )
    platform = tuple(
        attrs.evolve(p, base_url=environ[key].rstrip("/"))
        if (key := f"TIERKEEPER_PROVIDER_{p.id.upper()}_BASE_URL") in environ
        else p
        for p in catalog.platform_providers
    )
    return attrs.evolve(catalog, byok_providers=providers, platform_providers=platform)


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise CatalogError(f"catalog {path} cannot be read: {exc.strerror}") from None
