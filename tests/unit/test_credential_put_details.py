"""Saving a key: the plaintext in hand is not decrypted again, a new credential is dated by
the clock, and the audit entry says in words where the key is stored and whether the
platform fallback is on."""

from __future__ import annotations

import attrs
import pytest

from domain.byok import Ciphertext, CredentialInput
from domain.catalog import Catalog
from domain.ids import TenantId, UserId
from domain.secrets import Secret
from tests.fakes import FakeKeyStore, InMemoryAuditLog
from tests.unit.conftest import OPENAI_KEY, World

pytestmark = pytest.mark.unit

T = TenantId("t-1")
USER = UserId("u-t-1")


@attrs.define
class CountingKeyStore(FakeKeyStore):
    """The fake key store, counting decryptions."""

    decrypted: int = 0

    async def decrypt(self, ciphertext: Ciphertext) -> Secret:
        self.decrypted += 1
        return await super().decrypt(ciphertext)


async def test_saving_a_byok_key_writes_its_config_without_decrypting_it(
    catalog: Catalog,
) -> None:
    store = CountingKeyStore()
    world = World(catalog, key_store=store)
    await world.add_tenant("t-1", tier="byok")
    await world.add_key("t-1")
    assert store.decrypted == 0
    assert world.writer.written[T].secrets, "the config carries the key"


async def test_a_new_credential_is_created_and_updated_at_the_clock(world: World) -> None:
    await world.add_tenant("t-1", tier="byok")
    await world.add_key("t-1")
    stored = await world.credential_repo.get(T)
    assert stored is not None
    assert (stored.created_at, stored.updated_at) == (world.clock.now(), world.clock.now())


@pytest.mark.parametrize(("allow", "words"), [(True, "fallback on"), (False, "fallback off")])
async def test_the_audit_entry_is_dated_and_names_the_store_its_version_and_the_fallback(
    world: World, allow: bool, words: str
) -> None:
    await world.add_tenant("t-1", tier="byok")
    audit = InMemoryAuditLog()
    credentials = attrs.evolve(world.credentials, audit=audit)
    await credentials.put(T, USER, CredentialInput("openai", "gpt-4.1", Secret(OPENAI_KEY), allow))
    (entry,) = audit.recorded
    assert entry.detail == f"provider openai, store fake v1, {words}"
    assert entry.at == world.clock.now()
