"""``tierkeeper configs regenerate`` in proxy mode: every tenant's ``.env`` holds its virtual
key, which stays across regenerations until ``--rotate-virtual-keys`` replaces it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from adapters.catalog.toml_loader import load_catalog
from adapters.openclaw.writer import SECRETS_FILE, FileConfigWriter
from domain.use_cases.configs import Configs, ProxyMode
from domain.use_cases.virtual_keys import VirtualKeys
from domain.virtual_keys import VIRTUAL_KEY_ENV
from entrypoints import bootstrap
from entrypoints.cli import configs_commands, main
from entrypoints.settings import Settings
from tests.fakes import (
    FakeKeyStore,
    FixedClock,
    InMemoryCredentialRepository,
    InMemoryTenantRepository,
    InMemoryVirtualKeyRepository,
)
from tests.support.openclaw_variants import all_variants, store_variants

pytestmark = pytest.mark.contract

CHOSEN = ("starter", "byok-openai-valid-fallback")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setenv("TIERKEEPER_VAR_DIR", str(tmp_path / "var"))
    catalog = load_catalog()
    variants = [v for v in all_variants(catalog) if v.name in CHOSEN]
    tenants, credentials, key_store = (
        InMemoryTenantRepository(),
        InMemoryCredentialRepository(),
        FakeKeyStore(),
    )
    asyncio.run(store_variants(variants, tenants, credentials, key_store))
    keys = VirtualKeys(InMemoryVirtualKeyRepository(), key_store, FixedClock())
    writer = FileConfigWriter(tmp_path / "configs")

    async def close() -> None:
        return None

    services = SimpleNamespace(
        ports=SimpleNamespace(tenants=tenants),
        configs=Configs(
            catalog, tenants, credentials, key_store, writer, ProxyMode("http://tk:8000", keys)
        ),
        close=close,
    )

    async def build_services(settings: Settings) -> SimpleNamespace:
        return services

    monkeypatch.setattr(bootstrap, "build_services", build_services)
    monkeypatch.setattr(configs_commands, "migrate_embedded", lambda settings: False)
    return SimpleNamespace(writer=writer, tenant_keys=[v.api_key for v in variants if v.api_key])


def env_files(world: SimpleNamespace) -> dict[str, str]:
    return {t: (world.writer.tenant_dir(t) / SECRETS_FILE).read_text() for t in CHOSEN}


def test_virtual_keys_stay_across_regenerations_until_rotated(
    world: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["configs", "regenerate"]) == 0
    first = env_files(world)
    assert all(text.startswith(f"{VIRTUAL_KEY_ENV}=tkv_") for text in first.values())
    assert first["starter"] != first["byok-openai-valid-fallback"]
    assert main(["configs", "regenerate"]) == 0
    assert env_files(world) == first
    assert main(["configs", "regenerate", "--rotate-virtual-keys"]) == 0
    rotated = env_files(world)
    assert all(rotated[t] != first[t] for t in CHOSEN)
    output = capsys.readouterr().out
    for text in (*first.values(), *rotated.values()):
        assert text.strip().partition("=")[2] not in output
    for key in world.tenant_keys:
        assert all(key.reveal() not in text for text in rotated.values())
