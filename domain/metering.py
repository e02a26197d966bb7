"""Metering rules: admission against the day's message cap and the period's token budget,
settlement with model weights, reservation expiry and threshold crossings.

The usage ledger applies these rules atomically in its storage; ``evaluate_admission`` is the
rule itself, which the in-memory ledger runs directly and the SQL ledger mirrors in one
conditional statement per counter.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

import attrs

from domain.errors import ValidationError
from domain.ids import MessageId, ModelRef, ReservationId, TenantId
from domain.windows import Window

THRESHOLD_PERCENTS = (80, 100)
MAX_TOKENS_PER_MESSAGE = 2_000_000


class RefusalReason(enum.Enum):
    MESSAGE_CAP_REACHED = "message_cap_reached"
    TOKEN_BUDGET_EXHAUSTED = "token_budget_exhausted"
    SUBSCRIPTION_INACTIVE = "subscription_inactive"
    TENANT_UNKNOWN = "tenant_unknown"
    BYOK_KEY_INVALID = "byok_key_invalid"
    TENANT_CHANGED = "tenant_changed"
    """The tenant was saved since the copy the request was built from; never shown to a
    caller: the use case reads the tenant again and asks again."""


class Credential(enum.Enum):
    """Whose key served a message."""

    TENANT = "tenant"
    PLATFORM = "platform"


class LimitKind(enum.Enum):
    MESSAGES = "messages"
    TOKENS = "tokens"


@attrs.frozen
class AdmissionRequest:
    """Everything the ledger needs to admit one message atomically.

    ``token_budget`` is the platform-token budget of the period (None: no limit) and
    ``reserve_tokens`` what this message holds against it until settled.
    """

    tenant_id: TenantId
    message_id: MessageId
    day: Window
    period: Window
    message_cap: int
    token_budget: int | None
    reserve_tokens: int
    now: datetime
    reservation_expires_at: datetime
    tenant_revision: int | None = None
    """The revision of the tenant the request was built from; when given, the ledger refuses
    with ``TENANT_CHANGED``, changing nothing, unless the stored tenant still has it."""


@attrs.frozen
class Counters:
    """A tenant's standing in one day and one period, as the ledger holds it."""

    messages_today: int
    platform_tokens_settled: int
    platform_tokens_reserved: int
    own_key_tokens: int = 0

    @property
    def platform_tokens_committed(self) -> int:
        return self.platform_tokens_settled + self.platform_tokens_reserved


@attrs.frozen
class Admitted:
    reservation_id: ReservationId
    counters: Counters
    replayed: bool = False


@attrs.frozen
class Refused:
    reason: RefusalReason
    resets_at: datetime | None


AdmissionDecision = Admitted | Refused


def evaluate_admission(counters: Counters, request: AdmissionRequest) -> Refused | None:
    """A message is admitted only if the day's count is below the cap and the period's
    committed tokens plus this reservation fit the budget; otherwise the refusal says why
    and when the limit resets. None means: admit."""
    if counters.messages_today >= request.message_cap:
        return Refused(RefusalReason.MESSAGE_CAP_REACHED, request.day.resets_at)
    if request.token_budget is not None and (
        counters.platform_tokens_committed + request.reserve_tokens > request.token_budget
    ):
        return Refused(RefusalReason.TOKEN_BUDGET_EXHAUSTED, request.period.resets_at)
    return None


def admitted_counters(counters: Counters, request: AdmissionRequest) -> Counters:
    """An admitted message counts against the day at once and holds its reservation."""
    return attrs.evolve(
        counters,
        messages_today=counters.messages_today + 1,
        platform_tokens_reserved=counters.platform_tokens_reserved + request.reserve_tokens,
    )


def reservation_tokens(max_tokens: int | None, default: int) -> int:
    """The gateway's ``max_tokens`` for the answer, or the catalog default."""
    if max_tokens is None:
        return default
    if max_tokens < 1 or max_tokens > MAX_TOKENS_PER_MESSAGE:
        raise ValidationError(
            f"max_tokens must be between 1 and {MAX_TOKENS_PER_MESSAGE}", field="max_tokens"
        )
    return max_tokens


def reservation_expiry(now: datetime, ttl_seconds: int) -> datetime:
    return now + timedelta(seconds=ttl_seconds)


@attrs.frozen
class TokenUsage:
    """What the gateway reports after an answer."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens


def check_token_usage(usage: TokenUsage) -> None:
    for field, value in (
        ("input_tokens", usage.input_tokens),
        ("output_tokens", usage.output_tokens),
        ("cache_read_tokens", usage.cache_read_tokens),
    ):
        if value < 0 or value > MAX_TOKENS_PER_MESSAGE * 10:
            raise ValidationError(
                f"{field} must be between 0 and {MAX_TOKENS_PER_MESSAGE * 10}", field=field
            )


def weighted_tokens(usage: TokenUsage, budget_weight: Decimal) -> int:
    """Budget tokens of a message: every token processed (input, output, cache reads) times
    the model's budget weight, rounded up so a weight never rounds a cost away."""
    return math.ceil(Decimal(usage.total) * budget_weight)


@attrs.frozen
class SettlementRequest:
    """The reservation of ``message_id`` is replaced by ``weighted`` actual tokens.

    ``counts_against_budget`` is False for tokens on the tenant's own key: they are recorded
    but count against no platform limit.
    """

    tenant_id: TenantId
    message_id: MessageId
    model: ModelRef
    credential: Credential
    usage: TokenUsage
    weighted: int
    counts_against_budget: bool
    period: Window
    day: Window
    at: datetime
    tenant_revision: int | None = None
    """As in ``AdmissionRequest``: when given, the ledger answers ``TenantChanged``, writing
    nothing, unless the stored tenant still has it."""


@attrs.frozen
class Settled:
    counters_before: Counters
    counters_after: Counters
    replayed: bool = False


@attrs.frozen
class TenantChanged:
    """The stored tenant no longer has the request's revision (or is gone): nothing was
    written, and the request must be built again from the tenant as stored."""


SettlementOutcome = Settled | TenantChanged


@attrs.frozen
class Threshold:
    """A limit crossed in one window: notified once per (tenant, kind, window, percent)."""

    tenant_id: TenantId
    kind: LimitKind
    percent: int
    window_key: str
    used: int
    limit: int


def crossed_percents(before: int, after: int, limit: int | None) -> tuple[int, ...]:
    """The thresholds (80%, 100%) that ``before → after`` crosses upward against ``limit``."""
    if limit is None or limit <= 0:
        return ()
    return tuple(
        percent for percent in THRESHOLD_PERCENTS if before * 100 < percent * limit <= after * 100
    )


def thresholds_crossed(
    tenant_id: TenantId,
    kind: LimitKind,
    window: Window,
    before: int,
    after: int,
    limit: int | None,
) -> Iterable[Threshold]:
    for percent in crossed_percents(before, after, limit):
        assert limit is not None
        yield Threshold(tenant_id, kind, percent, window.key.isoformat(), after, limit)


def remaining(limit: int | None, used: int) -> int | None:
    """What is left of a limit; None where there is no limit. Never negative."""
    return None if limit is None else max(0, limit - used)
