"""Issuing, rotating and recognising virtual keys, and proxy-mode configs, on fakes."""

from __future__ import annotations

import pytest

from domain.catalog import Catalog
from domain.ids import TenantId
from domain.openclaw_model import ProxyEndpoint, through_proxy
from domain.secrets import Secret
from domain.use_cases.virtual_keys import VirtualKeys
from domain.virtual_keys import VIRTUAL_KEY_ENV
from tests.fakes import FakeKeyStore, FixedClock, InMemoryVirtualKeyRepository
from tests.support.openclaw_variants import all_variants

pytestmark = pytest.mark.unit


def virtual_keys() -> tuple[VirtualKeys, InMemoryVirtualKeyRepository, FixedClock]:
    repository, clock = InMemoryVirtualKeyRepository(), FixedClock()
    return VirtualKeys(repository, FakeKeyStore(), clock), repository, clock


async def test_a_tenant_gets_one_key_that_stays_until_rotated() -> None:
    keys, repository, _ = virtual_keys()
    first = await keys.current(TenantId("t1"))
    assert await keys.current(TenantId("t1")) == first
    assert repository.keys[TenantId("t1")].ciphertext.token != first.reveal()
    rotated = await keys.current(TenantId("t1"), rotate=True)
    assert rotated != first
    assert await keys.tenant_for(rotated.reveal()) == "t1"
    assert await keys.tenant_for(first.reveal()) is None


async def test_a_found_key_is_trusted_for_five_seconds_and_a_missing_one_never() -> None:
    keys, repository, clock = virtual_keys()
    key = await keys.current(TenantId("t1"))
    assert await keys.tenant_for(key.reveal()) == "t1"
    repository.keys.clear()
    assert await keys.tenant_for(key.reveal()) == "t1"
    clock.advance(seconds=5)
    assert await keys.tenant_for(key.reveal()) is None
    assert await keys.tenant_for("sk-not-a-virtual-key") is None


def test_a_proxy_mode_config_holds_the_virtual_key_and_no_provider_key(catalog: Catalog) -> None:
    variant = next(v for v in all_variants(catalog) if v.name == "byok-openai-valid-fallback")
    direct = variant.config(catalog)
    assert [s.env_name for s in direct.secrets] == ["TIERKEEPER_BYOK_OPENAI_KEY"]
    proxied = through_proxy(direct, ProxyEndpoint("http://tk:8000", Secret("tkv_abc")))
    assert [(s.env_name, s.value.reveal()) for s in proxied.secrets] == [
        (VIRTUAL_KEY_ENV, "tkv_abc")
    ]
    assert {p.api_key_env for p in proxied.providers} == {VIRTUAL_KEY_ENV}
    assert {p.base_url for p in proxied.providers} == {"http://tk:8000/v1", "http://tk:8000"}
    assert proxied.route == direct.route
    assert proxied.env_names() == (direct.gateway_token_env, VIRTUAL_KEY_ENV)
