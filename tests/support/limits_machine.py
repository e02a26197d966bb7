"""An adversarial customer and gateway against metering (issue #13), as a Hypothesis
``RuleBasedStateMachine``: random interleavings of admit, settle (any credential, any model,
tokens beyond the reservation), zone changes, model and key changes, key failures, tier
changes and clock advances across DST transitions. After every step the limits must hold:

- windows never overlap (days, and periods, each one sequence of intervals);
- admitted messages per day window never exceed the cap (and equal the ledger's count);
- weighted platform tokens per period never exceed the budget plus what settlements
  reported beyond their own (unexpired) reservations; for a BYOK tenant these are its
  platform-fallback tokens against the starter budget, on the same terms;
- no settlement counts as the tenant's own key unless its admission routed it there.

The machine runs on whatever storage ``Storage`` gives it: the in-memory fakes, or the
PostgreSQL adapters (``tests/integration``). Limits are small so they are reached.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.byok import CredentialInput
from domain.catalog import Catalog
from domain.errors import DomainError
from domain.ids import MessageId, TenantId, TierId, UserId
from domain.metering import Admitted, Credential, RefusalReason, Refused, TokenUsage
from domain.ports import CredentialRepository, TenantRepository, UnitOfWork, UsageLedger
from domain.secrets import Secret
from domain.tenants import SubscriptionStatus, Tenant, User
from domain.use_cases.configs import Configs
from domain.use_cases.credentials import Credentials
from domain.use_cases.metering import Metering
from domain.use_cases.notifications import Notifications
from domain.use_cases.tenants import Tenants
from tests.fakes import (
    FakeKeyStore,
    FixedClock,
    FixedProviderProbe,
    InMemoryConfigWriter,
    InMemoryNotificationSettings,
    InMemoryOutbox,
)

T = TypeVar("T")

TENANT = TenantId("t-machine")
USER = UserId("u-machine")
START = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)  # before the US (Mar 8) and EU (Mar 29) DST
ZONES = (
    "UTC", "America/New_York", "Europe/Berlin", "Pacific/Kiritimati", "Etc/GMT+12",
    "Australia/Lord_Howe", "America/Los_Angeles",
)  # fmt: skip
MODELS = (
    "moonshot/kimi-k2.5", "anthropic/claude-opus-4-6", "anthropic/claude-sonnet-4-6",
    "byok-openai/gpt-4.1", "acme/unknown",
)  # fmt: skip
CAPS = {"starter": 3, "premium": 5, "byok": 4}
BUDGETS = {"starter": 30_000, "premium": 60_000}
OPENAI_KEY = "sk-machine-test-key-0123456789"


def small_catalog(catalog: Catalog) -> Catalog:
    """The shipped catalog with caps and budgets small enough to reach in a few steps."""
    tiers = tuple(
        attrs.evolve(
            tier,
            messages_per_day=CAPS.get(tier.id, tier.messages_per_day),
            tokens_per_period=BUDGETS.get(tier.id, tier.tokens_per_period),
        )
        for tier in catalog.tiers
    )
    return attrs.evolve(catalog, tiers=tiers, reservation_tokens_default=8_000)


@attrs.frozen
class Storage:
    tenants: TenantRepository
    credentials: CredentialRepository
    ledger: UsageLedger
    close: Callable[[], Awaitable[None]]
    unit_of_work: UnitOfWork = attrs.field(kw_only=True)


StorageFactory = Callable[[], Awaitable[Storage]]


@attrs.define
class Admission:
    day: date
    period: date
    held: int
    to_tenant_key: bool
    at: datetime


class LimitsMachine(RuleBasedStateMachine):
    """Subclasses set ``catalog`` and ``open_storage`` (and may reset storage in
    ``teardown``)."""

    catalog: Catalog
    open_storage: StorageFactory

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FixedClock(START)
        self.storage = self.run(type(self).open_storage())
        writer = InMemoryConfigWriter()
        keys = FakeKeyStore()
        configs = Configs(
            self.catalog, self.storage.tenants, self.storage.credentials, keys, writer
        )
        self.metering = Metering(
            self.catalog, self.storage.tenants, self.storage.credentials, self.storage.ledger,
            self.clock,
        )  # fmt: skip
        notifications = Notifications(
            self.catalog, InMemoryOutbox(), InMemoryNotificationSettings(), self.storage.tenants,
            self.storage.credentials, keys, self.clock,
        )  # fmt: skip
        self.tenants = Tenants(
            self.catalog, self.storage.tenants, self.storage.credentials, configs, self.clock,
            unit_of_work=self.storage.unit_of_work, notifications=notifications,
        )  # fmt: skip
        self.credentials = Credentials(
            self.catalog, self.storage.tenants, self.storage.credentials, keys,
            FixedProviderProbe(), self.storage.unit_of_work, configs, self.clock,
        )  # fmt: skip
        self.next_id = 0
        self.admissions: dict[MessageId, Admission] = {}
        self.settled: set[MessageId] = set()
        self.day_counts: dict[date, int] = {}
        self.day_caps: dict[date, int] = {}
        self.platform_tokens: dict[date, int] = {}
        self.beyond_reservations: dict[date, int] = {}
        self.period_budgets: dict[date, int | None] = {}
        self.days_seen: list[tuple[date, datetime, datetime]] = []
        self.periods_seen: list[tuple[date, datetime, datetime]] = []

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        self.run(self.storage.close())
        self.loop.close()

    def tenant(self) -> Tenant:
        stored = self.run(self.storage.tenants.get(TENANT))
        assert stored is not None
        return stored

    @initialize(tier=st.sampled_from(sorted(CAPS)), zone=st.sampled_from(ZONES))
    def sign_up(self, tier: str, zone: str) -> None:
        tenant = Tenant(TENANT, TierId(tier), SubscriptionStatus.ACTIVE, zone, 7, START)
        user = User(USER, "machine@example.com", "hash", TENANT, START)
        self.run(self.storage.tenants.add(tenant, user))

    # --- the customer --------------------------------------------------------------------

    @rule(zone=st.sampled_from(ZONES))
    def change_zone(self, zone: str) -> None:
        self.run(self.tenants.update(TENANT, timezone=zone))

    @rule(tier=st.sampled_from(sorted(CAPS)))
    def change_tier(self, tier: str) -> None:
        self.run(self.tenants.change_tier(TENANT, tier, SubscriptionStatus.ACTIVE))

    @rule(model=st.sampled_from(("anthropic/claude-opus-4-6", "anthropic/claude-sonnet-4-6")))
    def choose_model(self, model: str) -> None:
        with contextlib.suppress(
            DomainError
        ):  # not selectable on this tier: refused, nothing changed
            self.run(self.tenants.update(TENANT, model_preference=model))

    @rule(allow=st.booleans())
    def store_key(self, allow: bool) -> None:
        submitted = CredentialInput("openai", "gpt-4.1", Secret(OPENAI_KEY), allow)
        self.run(self.credentials.put(TENANT, USER, submitted))

    @rule()
    def delete_key(self) -> None:
        with contextlib.suppress(DomainError):  # none stored
            self.run(self.credentials.delete(TENANT))

    # --- the gateway ---------------------------------------------------------------------

    @rule(status=st.sampled_from((401, 403, 429)))
    def key_fails(self, status: int) -> None:
        with contextlib.suppress(DomainError):  # no key of that provider stored
            self.run(self.credentials.report_key_failure(TENANT, "openai", status))

    @rule(
        repeat=st.booleans(),
        max_tokens=st.sampled_from((None, 1_000, 8_000, 25_000)),
    )
    def admit(self, repeat: bool, max_tokens: int | None) -> None:
        known = sorted(self.admissions)
        if repeat and known:
            message = known[self.next_id % len(known)]
        else:
            self.next_id += 1
            message = MessageId(f"m{self.next_id}")
        tenant = self.tenant()
        tier = self.catalog.tier(tenant.tier)
        day, period = self.metering.tenant_windows(tenant, self.clock.now())
        admission = self.run(self.metering.admit(TENANT, message, max_tokens))
        decision = admission.decision
        if isinstance(decision, Refused):
            assert decision.reason in {
                RefusalReason.MESSAGE_CAP_REACHED, RefusalReason.TOKEN_BUDGET_EXHAUSTED,
                RefusalReason.BYOK_KEY_INVALID,
            }, decision  # fmt: skip
            return
        assert isinstance(decision, Admitted)
        if decision.replayed:
            assert message in self.admissions
            return
        assert message not in self.admissions
        assert admission.route.primary is not None
        self.admissions[message] = Admission(
            day.key, period.key, decision.held_tokens,
            admission.route.primary.credential is Credential.TENANT, self.clock.now(),
        )  # fmt: skip
        self.day_counts[day.key] = self.day_counts.get(day.key, 0) + 1
        self.day_caps[day.key] = max(self.day_caps.get(day.key, 0), tier.messages_per_day)
        assert self.day_counts[day.key] <= tier.messages_per_day, "admitted beyond the cap"
        budget = self.metering.catalog.tier(tier.platform_fallback_tier or tier.id)
        self._budget_seen(period.key, budget.tokens_per_period)

    def _budget_seen(self, period: date, budget: int | None) -> None:
        before = self.period_budgets.get(period, 0)
        if before is None or budget is None:
            self.period_budgets[period] = None
        else:
            self.period_budgets[period] = max(before, budget)

    @rule(
        admitted=st.booleans(),
        credential=st.sampled_from(Credential),
        model=st.sampled_from(MODELS),
        tokens=st.integers(min_value=0, max_value=40_000),
    )
    def settle(self, admitted: bool, credential: Credential, model: str, tokens: int) -> None:
        known = sorted(self.admissions)
        if admitted and known:
            message = known[tokens % len(known)]
        else:
            self.next_id += 1
            message = MessageId(f"m{self.next_id}")
        tenant = self.tenant()
        _, period_now = self.metering.tenant_windows(tenant, self.clock.now())
        settled = self.run(
            self.metering.settle(TENANT, message, model, TokenUsage(tokens, 0, 0), credential)
        )
        if message in self.settled:
            assert settled.replayed
            return
        assert not settled.replayed
        self.settled.add(message)
        found = self.admissions.get(message)
        if settled.counted_as is Credential.TENANT:
            assert found is not None and found.to_tenant_key, "a settlement made tokens free"
            return
        weighted = self._weighted(message, model, tokens, found)
        period = found.period if found else period_now.key
        self.platform_tokens[period] = self.platform_tokens.get(period, 0) + weighted
        expired = found is not None and self.clock.now() >= found.at + timedelta(
            seconds=self.catalog.reservation_ttl_seconds
        )
        held = 0 if found is None or expired else found.held
        self.beyond_reservations[period] = self.beyond_reservations.get(period, 0) + max(
            0, weighted - held
        )
        if found is None:
            tier = self.catalog.tier(tenant.tier)
            budget = self.catalog.tier(tier.platform_fallback_tier or tier.id)
            self._budget_seen(period, budget.tokens_per_period)

    def _weighted(self, message: MessageId, model: str, tokens: int, found: Any) -> int:
        """What the ledger counted for this settlement, read back from its records."""
        records = self.run(
            self.storage.ledger.usage_records(START, self.clock.now() + timedelta(seconds=1))
        )
        (record,) = [r for r in records if r.message_id == message]
        assert record.credential is Credential.PLATFORM
        assert record.weighted_tokens >= tokens  # never rated below one token per token
        return int(record.weighted_tokens)

    @rule(step=st.sampled_from((60, 600, 1_000, 3_600, 5 * 3_600, 20 * 3_600, 3 * 86_400)))
    def time_passes(self, step: int) -> None:
        self.clock.advance(seconds=step)

    @rule()
    def sweep(self) -> None:
        self.run(self.metering.sweep())

    # --- what must hold after every step -------------------------------------------------

    @invariant()
    def windows_never_overlap(self) -> None:
        if not self.run(self.storage.tenants.get(TENANT)):
            return
        day, period = self.metering.tenant_windows(self.tenant(), self.clock.now())
        for seen, window in ((self.days_seen, day), (self.periods_seen, period)):
            current = (window.key, window.starts_at, window.resets_at)
            assert window.starts_at <= self.clock.now() < window.resets_at
            if seen and seen[-1] != current:
                assert current[1] >= seen[-1][2], f"{current} overlaps {seen[-1]}"
                seen.append(current)
            elif not seen:
                seen.append(current)

    @invariant()
    def admitted_messages_never_exceed_the_cap(self) -> None:
        for day, count in self.day_counts.items():
            assert count <= self.day_caps[day]
        if not self.run(self.storage.tenants.get(TENANT)):
            return
        now = self.clock.now()
        day, period = self.metering.tenant_windows(self.tenant(), now)
        counters = self.run(self.storage.ledger.counters(TENANT, day, period, now))
        assert counters.messages_today == self.day_counts.get(day.key, 0)
        assert counters.platform_tokens_settled == self.platform_tokens.get(period.key, 0)

    @invariant()
    def platform_tokens_never_exceed_the_budget_beyond_what_settlements_reported(self) -> None:
        for period, used in self.platform_tokens.items():
            budget = self.period_budgets.get(period, 0)
            if budget is None:
                continue
            assert used <= budget + self.beyond_reservations.get(period, 0), (period, used)
