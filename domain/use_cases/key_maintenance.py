"""Batch jobs over every stored BYOK key: rotate, move between stores, verify.

The rules that make them safe to run on a live service and to interrupt at any point:

- The job first takes a snapshot of each tenant's ciphertext, then handles the tenants in
  snapshot order, ``concurrency`` at a time. Nothing is written for a tenant until its new
  ciphertext exists and (migrate) reads back in the target store; the swap is
  ``replace_ciphertext(expected, new)``, so a customer's concurrent PUT wins and the job
  counts that tenant as skipped.
- Each tenant is swapped on its own: a job stopped halfway leaves every key readable, some
  under the old key and some under the new. A rerun skips the ones already current (rotate)
  or already moved (migrate), so rerunning until ``failed == 0`` is the whole procedure.
- A key that cannot be read is counted as failed, with the store's reason, and the job goes
  on with the next tenant; the store itself being down stops the job before it starts.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable

import attrs

from domain.audit import OPERATOR, Actor, AuditAction, AuditEntry, NoAuditLog
from domain.byok import Ciphertext
from domain.errors import KeyStoreUnavailable
from domain.ids import TenantId
from domain.ports import AuditLog, Clock, CredentialRepository
from domain.use_cases.key_store_set import KeyStoreSet


class Action(enum.Enum):
    ROTATE = "rotate"
    MIGRATE = "migrate"
    VERIFY = "verify"


class Outcome(enum.Enum):
    CHANGED = "changed"
    SKIPPED = "skipped"
    VERIFIED = "verified"
    STALE = "stale"  # verify: readable, but not under the active store's newest key
    FAILED = "failed"


@attrs.frozen
class Failure:
    """A tenant whose key could not be handled, and the store's reason (never the key)."""

    tenant_id: TenantId
    detail: str


@attrs.frozen
class Progress:
    """Reported after each tenant: how many are done out of how many, and what happened."""

    done: int
    total: int
    tenant_id: TenantId
    outcome: Outcome


ProgressCallback = Callable[[Progress], None]
Row = tuple[TenantId, Ciphertext]


def _ignore(progress: Progress) -> None:
    return None


@attrs.frozen
class Summary:
    """What a run did. Rotate and migrate report ``changed`` and ``skipped`` (already
    current, already moved, or changed concurrently); verify reports ``verified`` (readable)
    of which ``stale`` are not under the active store's newest key."""

    action: Action
    processed: int
    changed: int
    skipped: int
    failed: int
    verified: int = 0
    stale: int = 0
    failures: tuple[Failure, ...] = ()

    def ok(self) -> bool:
        return self.failed == 0


@attrs.define
class _Tally:
    action: Action
    total: int
    on_progress: ProgressCallback
    counts: dict[Outcome, int] = attrs.Factory(lambda: dict.fromkeys(Outcome, 0))
    failures: list[Failure] = attrs.Factory(list)

    def record(self, tenant_id: TenantId, result: Outcome | KeyStoreUnavailable) -> None:
        if isinstance(result, KeyStoreUnavailable):
            self.failures.append(Failure(tenant_id, result.detail))
            result = Outcome.FAILED
        self.counts[result] += 1
        self.on_progress(Progress(sum(self.counts.values()), self.total, tenant_id, result))

    def summary(self) -> Summary:
        return Summary(
            action=self.action,
            processed=sum(self.counts.values()),
            changed=self.counts[Outcome.CHANGED],
            skipped=self.counts[Outcome.SKIPPED],
            failed=self.counts[Outcome.FAILED],
            verified=self.counts[Outcome.VERIFIED] + self.counts[Outcome.STALE],
            stale=self.counts[Outcome.STALE],
            failures=tuple(self.failures),
        )


Handler = Callable[[TenantId, Ciphertext], Awaitable[Outcome]]


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class KeyMaintenance:
    """The three jobs over the credential repository and the configured key stores.

    ``concurrency`` keys are handled at a time (each still swapped on its own); progress is
    reported in snapshot order once a group is done, so a job stopped by its progress
    callback has handled exactly the keys reported."""

    credentials: CredentialRepository
    stores: KeyStoreSet
    batch_size: int = attrs.field(default=500, validator=_positive)
    concurrency: int = attrs.field(default=1, validator=_positive)
    audit: AuditLog = attrs.field(factory=NoAuditLog, kw_only=True)
    clock: Clock | None = attrs.field(default=None, kw_only=True)
    """Times the audit entries of changed keys; required with a real ``audit``."""
    actor: Actor = attrs.field(default=OPERATOR, kw_only=True)

    async def snapshot(self) -> list[Row]:
        """Every tenant's ciphertext as it is now; the jobs then work from this list, so no
        read cursor stays open while they write."""
        return [
            (credential.tenant_id, credential.ciphertext)
            async for credential in self.credentials.iter_all(self.batch_size)
        ]

    async def rotate(self, on_progress: ProgressCallback = _ignore) -> Summary:
        """Re-encrypt every key that is not under its own store's newest key (Fernet: the
        newest platform secret; Vault: the transit key's latest version). Keys stay in the
        store that holds them; moving them is ``migrate``."""
        rows = await self.snapshot()
        await self._check_stores_of(rows)

        async def rotate_one(tenant_id: TenantId, ciphertext: Ciphertext) -> Outcome:
            store = self.stores.store_named(ciphertext.store)
            if await store.is_current(ciphertext):
                return Outcome.SKIPPED
            return await self._swap(tenant_id, ciphertext, await store.rewrap(ciphertext))

        return await self._run(Action.ROTATE, rows, rotate_one, on_progress)

    async def migrate(self, target: str, on_progress: ProgressCallback = _ignore) -> Summary:
        """Move every key into the store named ``target``: decrypted by the store that made
        it, encrypted by the target, read back, then swapped. Keys already in the target are
        skipped."""
        target_store = self.stores.store_named(target)
        rows = await self.snapshot()
        await self._check_stores_of(rows, target)

        async def move_one(tenant_id: TenantId, ciphertext: Ciphertext) -> Outcome:
            if ciphertext.store == target:
                return Outcome.SKIPPED
            plaintext = await self.stores.decrypt(ciphertext)
            new = await target_store.encrypt(plaintext)
            if (await target_store.decrypt(new)).reveal() != plaintext.reveal():
                raise KeyStoreUnavailable(
                    f"the {target} key store did not read back the key it encrypted"
                )
            return await self._swap(tenant_id, ciphertext, new)

        return await self._run(Action.MIGRATE, rows, move_one, on_progress)

    async def verify(self, on_progress: ProgressCallback = _ignore) -> Summary:
        """Decrypt every key and report the unreadable ones; writes nothing. Readable keys
        not under the active store's newest key are counted as stale."""
        rows = await self.snapshot()

        async def verify_one(tenant_id: TenantId, ciphertext: Ciphertext) -> Outcome:
            await self.stores.decrypt(ciphertext)
            current = await self.stores.is_current(ciphertext)
            return Outcome.VERIFIED if current else Outcome.STALE

        return await self._run(Action.VERIFY, rows, verify_one, on_progress)

    async def _run(
        self, action: Action, rows: list[Row], handle: Handler, on_progress: ProgressCallback
    ) -> Summary:
        tally = _Tally(action, len(rows), on_progress)

        async def guarded(row: Row) -> Outcome | KeyStoreUnavailable:
            try:
                return await handle(*row)
            except KeyStoreUnavailable as error:
                return error

        for start in range(0, len(rows), self.concurrency):
            group = rows[start : start + self.concurrency]
            async with asyncio.TaskGroup() as tasks:
                running = [(row, tasks.create_task(guarded(row))) for row in group]
            for (tenant_id, old), task in running:
                tally.record(tenant_id, task.result())
                if task.result() is Outcome.CHANGED:
                    await self._audit_changed(action, tenant_id, old)
        return tally.summary()

    async def _audit_changed(self, action: Action, tenant_id: TenantId, old: Ciphertext) -> None:
        """One trail entry per key re-encrypted (rotate) or moved (migrate), by the operator,
        naming the store and key version it left."""
        if self.clock is None:
            return
        kind = AuditAction.KEY_MOVED if action is Action.MIGRATE else AuditAction.KEY_ROTATED
        detail = f"from {old.store} v{old.key_version}"
        await self.audit.record(AuditEntry(self.clock.now(), kind, self.actor, tenant_id, detail))

    async def _check_stores_of(self, rows: list[Row], *extra: str) -> None:
        """A store that is down stops the job before it writes anything; a store no row
        names is not asked, and a name no store has fails only its own rows."""
        names = {ciphertext.store for _, ciphertext in rows} | set(extra)
        for store in self.stores.stores():
            if store.name in names:
                await store.check()

    async def _swap(self, tenant_id: TenantId, expected: Ciphertext, new: Ciphertext) -> Outcome:
        """A tenant whose row changed since the snapshot (a PUT, a delete) is left alone."""
        swapped = await self.credentials.replace_ciphertext(tenant_id, expected, new)
        return Outcome.CHANGED if swapped else Outcome.SKIPPED
