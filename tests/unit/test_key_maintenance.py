"""Rotate, migrate and verify every stored key, on in-memory fakes."""

from __future__ import annotations

import attrs
import pytest

from domain.byok import Ciphertext
from domain.errors import KeyStoreUnavailable, ValidationError
from domain.secrets import Secret
from domain.use_cases.key_maintenance import (
    Action,
    Failure,
    KeyMaintenance,
    Outcome,
    Progress,
)
from domain.use_cases.key_store_set import KeyStoreSet
from tests.fakes import FakeKeyStore, InMemoryCredentialRepository
from tests.support.credentials import (
    api_key_for,
    store_credentials,
    stored_credential,
    tenant_id_for,
)

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("keys_never_logged")]


class Interrupted(Exception):
    """Stands for Ctrl-C or a crash in the middle of a job."""


def stop_after(count: int):
    def on_progress(progress: Progress) -> None:
        if progress.done >= count:
            raise Interrupted

    return on_progress


@attrs.define
class World:
    repository: InMemoryCredentialRepository
    old: FakeKeyStore
    new: FakeKeyStore

    def maintenance(self, active: str = "old") -> KeyMaintenance:
        stores = (self.old, self.new) if active == "old" else (self.new, self.old)
        return KeyMaintenance(self.repository, KeyStoreSet(stores[0], stores[1:]))

    async def plaintexts(self) -> dict[str, str]:
        stores = KeyStoreSet(self.old, (self.new,))
        return {
            tenant_id: (await stores.decrypt(row.ciphertext)).reveal()
            for tenant_id, row in self.repository.rows.items()
        }


@pytest.fixture
async def world() -> World:
    repository = InMemoryCredentialRepository()
    old, new = FakeKeyStore(name="old"), FakeKeyStore(name="new")
    await store_credentials(repository, old, range(10))
    return World(repository, old, new)


def expected_plaintexts(numbers: range) -> dict[str, str]:
    return {tenant_id_for(n): api_key_for(n).reveal() for n in numbers}


async def test_rotate_rewraps_only_the_stale_keys_and_counts_them(world: World):
    world.old.version = 2
    await store_credentials(world.repository, world.old, range(7, 10))

    summary = await world.maintenance().rotate()

    assert summary.action is Action.ROTATE
    assert (summary.processed, summary.changed, summary.skipped, summary.failed) == (10, 7, 3, 0)
    assert {row.ciphertext.key_version for row in world.repository.rows.values()} == {2}
    assert await world.plaintexts() == expected_plaintexts(range(10))


async def test_a_second_rotate_changes_nothing(world: World):
    world.old.version = 2
    await world.maintenance().rotate()
    before = dict(world.repository.rows)

    summary = await world.maintenance().rotate()

    assert (summary.changed, summary.skipped) == (0, 10)
    assert world.repository.rows == before


async def test_rotate_keeps_each_key_in_the_store_that_holds_it(world: World):
    await store_credentials(world.repository, world.new, range(8, 10))
    world.old.version, world.new.version = 3, 5

    summary = await world.maintenance().rotate()

    assert summary.changed == 10
    stores = {
        row.ciphertext.store: row.ciphertext.key_version for row in world.repository.rows.values()
    }
    assert stores == {"old": 3, "new": 5}


async def test_migrate_moves_every_key_into_the_target_with_the_same_plaintext(world: World):
    summary = await world.maintenance().migrate("new")

    assert (summary.action, summary.processed, summary.changed, summary.failed) == (
        Action.MIGRATE,
        10,
        10,
        0,
    )
    assert {row.ciphertext.store for row in world.repository.rows.values()} == {"new"}
    assert await world.plaintexts() == expected_plaintexts(range(10))


async def test_a_rerun_of_migrate_skips_the_keys_already_moved(world: World):
    await world.maintenance().migrate("new")

    summary = await world.maintenance(active="new").migrate("new")

    assert (summary.changed, summary.skipped) == (0, 10)


async def test_an_interrupted_migrate_leaves_every_key_readable_and_a_rerun_finishes_it(
    world: World,
):
    with pytest.raises(Interrupted):
        await world.maintenance().migrate("new", stop_after(4))

    halfway = [row.ciphertext.store for row in world.repository.rows.values()]
    assert sorted(halfway) == ["new"] * 4 + ["old"] * 6
    assert await world.plaintexts() == expected_plaintexts(range(10))

    summary = await world.maintenance().migrate("new")

    assert (summary.changed, summary.skipped, summary.failed) == (6, 4, 0)
    assert {row.ciphertext.store for row in world.repository.rows.values()} == {"new"}


async def test_an_interrupted_rotate_resumes_where_it_stopped(world: World):
    world.old.version = 2
    with pytest.raises(Interrupted):
        await world.maintenance().rotate(stop_after(3))

    summary = await world.maintenance().rotate()

    assert (summary.changed, summary.skipped) == (7, 3)
    assert {row.ciphertext.key_version for row in world.repository.rows.values()} == {2}


async def test_a_concurrent_put_wins_over_the_job_and_counts_as_skipped(world: World):
    """The job's swap is conditional on the ciphertext it read, so a PUT made meanwhile stays."""
    fresh = await world.old.encrypt(Secret("sk-ant-api03-putDuringTheJob-9Qa"))
    put_row = stored_credential(9, fresh)

    def put_during_the_job(progress: Progress) -> None:
        if progress.done == 1:
            world.repository.rows[put_row.tenant_id] = put_row

    summary = await world.maintenance().migrate("new", put_during_the_job)

    assert (summary.changed, summary.skipped) == (9, 1)
    assert world.repository.rows[tenant_id_for(9)].ciphertext == fresh


async def test_a_key_deleted_during_the_job_is_skipped_and_not_recreated(world: World):
    def delete_during_the_job(progress: Progress) -> None:
        world.repository.rows.pop(tenant_id_for(5), None)

    summary = await world.maintenance().migrate("new", delete_during_the_job)

    assert summary.skipped == 1
    assert tenant_id_for(5) not in world.repository.rows


async def test_an_unreadable_key_is_reported_left_untouched_and_the_job_goes_on(world: World):
    row = world.repository.rows[tenant_id_for(3)]
    broken = attrs.evolve(row.ciphertext, token="not-a-token")
    world.repository.rows[row.tenant_id] = attrs.evolve(row, ciphertext=broken)

    summary = await world.maintenance().migrate("new")

    assert (summary.changed, summary.failed) == (9, 1)
    assert summary.failures == (Failure(tenant_id_for(3), "the fake ciphertext was tampered with"),)
    assert world.repository.rows[tenant_id_for(3)].ciphertext == broken
    assert summary.ok() is False


async def test_a_key_of_an_unconfigured_store_fails_alone(world: World):
    row = world.repository.rows[tenant_id_for(0)]
    world.repository.rows[row.tenant_id] = attrs.evolve(
        row, ciphertext=Ciphertext("retired", 1, "x")
    )

    summary = await world.maintenance().rotate()

    assert summary.failed == 1
    assert "no key store named 'retired' is configured" in summary.failures[0].detail


async def test_a_store_that_is_down_stops_the_job_before_anything_is_written(world: World):
    world.new.available = False
    before = dict(world.repository.rows)

    with pytest.raises(KeyStoreUnavailable, match="down"):
        await world.maintenance().migrate("new")

    assert world.repository.rows == before


async def test_migrate_to_an_unconfigured_store_is_refused(world: World):
    with pytest.raises(KeyStoreUnavailable, match="no key store named 'vault'"):
        await world.maintenance().migrate("vault")


async def test_migrate_writes_nothing_when_the_target_does_not_read_back_its_key(world: World):
    @attrs.define
    class Forgetful(FakeKeyStore):
        async def decrypt(self, ciphertext: Ciphertext) -> Secret:
            return Secret("something else")

    target = Forgetful(name="new")
    before = dict(world.repository.rows)
    maintenance = KeyMaintenance(world.repository, KeyStoreSet(world.old, (target,)))

    summary = await maintenance.migrate("new")

    assert summary.failed == 10
    assert summary.failures[0] == Failure(
        tenant_id_for(0), "the new key store did not read back the key it encrypted"
    )
    assert world.repository.rows == before


async def test_verify_reports_unreadable_and_stale_keys_and_writes_nothing(world: World):
    world.old.version = 2
    await store_credentials(world.repository, world.old, range(8, 10))
    row = world.repository.rows[tenant_id_for(0)]
    world.repository.rows[row.tenant_id] = attrs.evolve(
        row, ciphertext=attrs.evolve(row.ciphertext, token="tampered")
    )
    before = dict(world.repository.rows)

    summary = await world.maintenance().verify()

    assert summary.action is Action.VERIFY
    assert (summary.processed, summary.verified, summary.stale, summary.failed) == (10, 9, 7, 1)
    assert (summary.changed, summary.skipped) == (0, 0)
    assert summary.failures[0].tenant_id == tenant_id_for(0)
    assert world.repository.rows == before


async def test_progress_is_reported_once_per_key_up_to_the_total(world: World):
    events: list[Progress] = []
    world.old.version = 2

    await world.maintenance().rotate(events.append)

    assert [event.done for event in events] == list(range(1, 11))
    assert {event.total for event in events} == {10}
    assert {event.outcome for event in events} == {Outcome.CHANGED}


async def test_a_job_over_no_keys_reports_zeros():
    maintenance = KeyMaintenance(InMemoryCredentialRepository(), KeyStoreSet(FakeKeyStore()))

    summary = await maintenance.rotate()

    assert (summary.processed, summary.changed, summary.skipped, summary.failed) == (0, 0, 0, 0)
    assert summary.ok() is True


class TestKeyStoreSet:
    async def test_new_keys_are_encrypted_by_the_active_store(self):
        stores = KeyStoreSet(FakeKeyStore(name="a"), (FakeKeyStore(name="b"),))

        ciphertext = await stores.encrypt(Secret("sk-x"))

        assert (stores.name, ciphertext.store) == ("a", "a")

    async def test_each_ciphertext_is_decrypted_by_the_store_that_made_it(self):
        a, b = FakeKeyStore(name="a"), FakeKeyStore(name="b")
        stores = KeyStoreSet(a, (b,))

        from_b = await b.encrypt(Secret("sk-from-b"))

        assert (await stores.decrypt(from_b)).reveal() == "sk-from-b"

    async def test_only_the_active_stores_newest_key_is_current(self):
        a, b = FakeKeyStore(name="a"), FakeKeyStore(name="b")
        stores = KeyStoreSet(a, (b,))

        assert await stores.is_current(await a.encrypt(Secret("k"))) is True
        assert await stores.is_current(await b.encrypt(Secret("k"))) is False

    async def test_rewrap_moves_a_key_of_another_store_into_the_active_one(self):
        a, b = FakeKeyStore(name="a", version=4), FakeKeyStore(name="b")
        stores = KeyStoreSet(a, (b,))

        moved = await stores.rewrap(await b.encrypt(Secret("sk-moved")))

        assert (moved.store, moved.key_version) == ("a", 4)
        assert (await stores.decrypt(moved)).reveal() == "sk-moved"

    async def test_an_unknown_store_is_unavailable_and_names_the_configured_ones(self):
        stores = KeyStoreSet(FakeKeyStore(name="a"), (FakeKeyStore(name="b"),))

        with pytest.raises(KeyStoreUnavailable, match=r"'gone' is configured \(configured: a, b\)"):
            await stores.decrypt(Ciphertext("gone", 1, "x"))

    def test_two_stores_of_the_same_name_are_refused(self):
        with pytest.raises(ValidationError, match="distinct names"):
            KeyStoreSet(FakeKeyStore(name="a"), (FakeKeyStore(name="a"),))

    def test_two_stores_of_the_same_name_are_a_field_error_on_the_stores(self):
        with pytest.raises(ValidationError) as raised:
            KeyStoreSet(FakeKeyStore(name="a"), (FakeKeyStore(name="b"), FakeKeyStore(name="a")))

        assert (raised.value.field, raised.value.detail) == (
            "stores",
            "key stores must have distinct names, got ['a', 'b', 'a']",
        )

    async def test_rewrap_of_the_active_stores_own_key_moves_it_to_the_newest_version(self):
        a, b = FakeKeyStore(name="a", version=1), FakeKeyStore(name="b")
        stores = KeyStoreSet(a, (b,))
        old = await a.encrypt(Secret("sk-kept"))
        a.version = 2

        rewrapped = await stores.rewrap(old)

        assert (rewrapped.store, rewrapped.key_version) == ("a", 2)
        assert (await stores.decrypt(rewrapped)).reveal() == "sk-kept"

    async def test_check_asks_the_active_store(self):
        down = FakeKeyStore(name="a", available=False)

        with pytest.raises(KeyStoreUnavailable):
            await KeyStoreSet(down).check()


async def test_keys_handled_several_at_a_time_give_the_same_result_in_snapshot_order(
    world: World,
):
    events: list[Progress] = []
    jobs = KeyMaintenance(world.repository, KeyStoreSet(world.old, (world.new,)), concurrency=4)

    summary = await jobs.migrate("new", events.append)

    assert (summary.changed, summary.failed) == (10, 0)
    assert [event.tenant_id for event in events] == [tenant_id_for(n) for n in range(10)]
    assert await world.plaintexts() == expected_plaintexts(range(10))


async def test_a_job_stopped_by_its_progress_callback_has_handled_exactly_the_keys_reported(
    world: World,
):
    jobs = KeyMaintenance(world.repository, KeyStoreSet(world.old, (world.new,)), concurrency=4)

    with pytest.raises(Interrupted):
        await jobs.migrate("new", stop_after(8))

    moved = sorted(t for t, row in world.repository.rows.items() if row.ciphertext.store == "new")
    assert moved == [tenant_id_for(n) for n in range(8)]


async def test_the_snapshot_reads_the_repository_in_pages_of_the_batch_size(world: World):
    sizes: list[int] = []

    @attrs.define
    class Paging(InMemoryCredentialRepository):
        def iter_all(self, batch_size: int = 500):
            sizes.append(batch_size)
            return super().iter_all(batch_size)

    repository = Paging(dict(world.repository.rows))
    maintenance = KeyMaintenance(repository, KeyStoreSet(world.old), batch_size=7)

    rows = await maintenance.snapshot()

    assert sizes == [7]
    assert [tenant_id for tenant_id, _ in rows] == sorted(world.repository.rows)


def test_a_concurrency_below_one_is_refused():
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        KeyMaintenance(InMemoryCredentialRepository(), KeyStoreSet(FakeKeyStore()), concurrency=0)
