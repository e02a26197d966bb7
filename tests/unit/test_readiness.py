"""Readiness: the database must answer and take writes, then the key store must answer."""

from __future__ import annotations

from domain.errors import DatabaseUnavailable
from domain.use_cases.readiness import Dependency, Readiness
from tests.fakes import InMemoryTenantRepository
from tests.unit.conftest import World


class UnreachableTenants(InMemoryTenantRepository):
    async def count(self) -> int:
        raise DatabaseUnavailable("the database cannot be reached right now")


def readiness(world: World) -> Readiness:
    return Readiness(world.tenant_repo, world.ledger, world.key_store)


async def test_an_instance_whose_database_and_key_store_answer_is_ready(world: World) -> None:
    assert await readiness(world).first_unavailable() is None


async def test_an_unreachable_database_is_named(world: World) -> None:
    unreachable = Readiness(UnreachableTenants(), world.ledger, world.key_store)
    assert await unreachable.first_unavailable() is Dependency.DATABASE


async def test_a_read_only_database_is_unavailable(world: World) -> None:
    world.ledger.writable = False
    assert await readiness(world).first_unavailable() is Dependency.DATABASE


async def test_a_key_store_that_does_not_answer_is_named(world: World) -> None:
    world.key_store.available = False
    assert await readiness(world).first_unavailable() is Dependency.KEY_STORE


async def test_the_database_is_named_first_when_both_fail(world: World) -> None:
    world.ledger.writable = False
    world.key_store.available = False
    assert await readiness(world).first_unavailable() is Dependency.DATABASE
