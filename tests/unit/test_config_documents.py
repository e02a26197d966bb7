"""The gateway's config document (issue #14 step 5): the same document the config files
hold, built without decrypting anything, and in proxy mode without touching virtual keys."""

from __future__ import annotations

import attrs
import pytest

from domain.byok import KeyStatus
from domain.errors import NotFound
from domain.ids import TenantId
from domain.openclaw_model import TenantConfig
from domain.use_cases.config_documents import ConfigDocuments
from domain.use_cases.configs import Configs, ProxyMode
from domain.use_cases.virtual_keys import VirtualKeys
from tests.fakes import FakeKeyStore, FixedClock, InMemoryConfigWriter, InMemoryVirtualKeyRepository
from tests.unit.conftest import World

PROXY_URL = "http://tierkeeper.internal:8000"


class WholeConfigWriter(InMemoryConfigWriter):
    """Renders the whole config, so a test can compare documents field by field."""

    def render(self, config: TenantConfig) -> dict[str, object]:
        return {"config": config}


async def tenants_of_every_kind(world: World) -> list[TenantId]:
    """Starter, premium, BYOK without a key, BYOK on its own valid key, BYOK whose key was
    found invalid (platform fallback)."""
    await world.add_tenant("t-starter", tier="starter")
    await world.add_tenant("t-premium", tier="premium")
    await world.add_tenant("t-byok-none", tier="byok")
    await world.add_tenant("t-byok-key", tier="byok")
    await world.add_key("t-byok-key")
    await world.add_tenant("t-byok-invalid", tier="byok")
    await world.add_key("t-byok-invalid", provider="anthropic", model="claude-sonnet-4-6",
                        key="sk-ant-api03-secretsecretx9Qa")  # fmt: skip
    stored = await world.credential_repo.get(TenantId("t-byok-invalid"))
    assert stored is not None
    await world.credential_repo.put(attrs.evolve(stored, status=KeyStatus.INVALID))
    return [TenantId(t) for t in ("t-starter", "t-premium", "t-byok-none", "t-byok-key",
                                  "t-byok-invalid")]  # fmt: skip


def documents(world: World, proxy_url: str | None = None) -> ConfigDocuments:
    return ConfigDocuments(
        world.catalog,
        world.tenant_repo,
        world.credential_repo,
        WholeConfigWriter(),
        world.clock,
        proxy_url,
    )


async def test_the_document_is_the_written_config_without_secrets_and_decrypts_nothing(
    world: World,
) -> None:
    ids = await tenants_of_every_kind(world)
    written = {tenant_id: await world.configs.build(tenant_id) for tenant_id in ids}
    assert written[TenantId("t-byok-key")].secrets, "the files of a BYOK tenant hold its key"
    world.key_store.available = False  # any decrypt now fails
    for tenant_id in ids:
        document = await documents(world).document(tenant_id)
        assert document.openclaw == {"config": attrs.evolve(written[tenant_id], secrets=())}
        assert document.env_names == written[tenant_id].env_names()
        assert document.generated_at == world.clock.now()
    own_key = await documents(world).document(TenantId("t-byok-key"))
    assert "TIERKEEPER_BYOK_OPENAI_KEY" in own_key.env_names


async def test_the_proxy_document_names_the_virtual_key_without_reading_or_creating_one(
    world: World,
) -> None:
    ids = await tenants_of_every_kind(world)
    key_store = FakeKeyStore()
    virtual_keys = InMemoryVirtualKeyRepository()
    proxied = Configs(
        world.catalog, world.tenant_repo, world.credential_repo, world.key_store, world.writer,
        ProxyMode(PROXY_URL, VirtualKeys(virtual_keys, key_store, FixedClock())),
    )  # fmt: skip
    written = {tenant_id: await proxied.build(tenant_id) for tenant_id in ids}
    virtual_keys.keys.clear()
    world.key_store.available = False
    key_store.available = False
    for tenant_id in ids:
        document = await documents(world, PROXY_URL).document(tenant_id)
        assert document.openclaw == {"config": attrs.evolve(written[tenant_id], secrets=())}
        assert document.env_names == ("OPENCLAW_GATEWAY_TOKEN", "TIERKEEPER_VIRTUAL_KEY")
    assert virtual_keys.keys == {}


async def test_an_unknown_tenant_has_no_document_in_words(world: World) -> None:
    with pytest.raises(NotFound) as raised:
        await documents(world).document(TenantId("nobody"))
    assert (raised.value.code, raised.value.detail) == ("tenant_unknown", "the tenant is unknown")
