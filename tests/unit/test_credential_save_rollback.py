"""Saving a BYOK key is all or nothing: when storing the credential fails after the files
were written with the new key, the files are written back from what is stored."""

from __future__ import annotations

import attrs
import pytest

from domain.byok import StoredCredential
from domain.catalog import Catalog
from domain.ids import TenantId
from domain.openclaw_model import TenantConfig
from domain.secrets import Secret
from tests.fakes import InMemoryConfigWriter, InMemoryCredentialRepository
from tests.unit.conftest import OPENAI_KEY, World

T = TenantId("t-1")
NEW_KEY = "sk-proj-zyxwvutsrqponm9876"


@attrs.define
class FailingCredentialRepository(InMemoryCredentialRepository):
    """Stores until told to fail, as a database that goes away mid-save."""

    failing: bool = False

    async def put(self, credential: StoredCredential) -> None:
        if self.failing:
            raise OSError("disk full")
        await super().put(credential)


async def test_a_failed_store_writes_the_files_back_from_the_stored_key(
    catalog: Catalog,
) -> None:
    repository = FailingCredentialRepository()
    world = World(catalog, credential_repo=repository)
    await world.add_tenant(tier="byok")
    await world.add_key(key=OPENAI_KEY)
    repository.failing = True
    with pytest.raises(OSError, match="disk full"):
        await world.add_key(key=NEW_KEY)
    secrets = [s.value for s in world.writer.written[T].secrets]
    assert secrets == [Secret(OPENAI_KEY)]


async def test_a_failing_write_back_leaves_the_store_failure_to_be_seen(
    catalog: Catalog,
) -> None:
    @attrs.define
    class FailsAfterTwo(InMemoryConfigWriter):
        calls: int = 0

        async def write(self, config: TenantConfig) -> bool:
            self.calls += 1
            if self.calls > 2:
                raise PermissionError("read-only files")
            return await super().write(config)

    repository = FailingCredentialRepository()
    world = World(catalog, credential_repo=repository, writer=FailsAfterTwo())
    await world.add_tenant(tier="byok")
    await world.add_key(key=OPENAI_KEY)
    repository.failing = True
    with pytest.raises(OSError, match="disk full"):
        await world.add_key(key=NEW_KEY)
